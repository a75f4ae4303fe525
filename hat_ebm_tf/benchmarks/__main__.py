"""``python -m hat_ebm_tf.benchmarks``: run the Hat EBM benchmarks (flags: ``--help``).

The flags are parsed before TensorFlow is imported, so that ``--help`` and a
bad flag answer at once.
"""

import argparse
import os

from hat_ebm_tf.benchmarks.flags import add_arguments


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m hat_ebm_tf.benchmarks", description="Hat EBM benchmarks (the same flags as `hat-ebm bench`)."
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    # Before TensorFlow is imported: keep its C++ start-up chatter off the report.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from hat_ebm_tf.benchmarks.run import run_benchmarks  # TensorFlow: loaded only once the flags parse

    run_benchmarks(args)


if __name__ == "__main__":
    main()
