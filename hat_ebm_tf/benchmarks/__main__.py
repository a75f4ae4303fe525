"""``python -m hat_ebm_tf.benchmarks``: run the Hat EBM benchmarks (flags: ``--help``)."""

import os

# Before TensorFlow is imported: keep its C++ start-up chatter off the report.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from hat_ebm_tf.benchmarks.run import main

if __name__ == "__main__":
    main()
