"""``hat-ebm bench``: sampler, FLOP, XLA, training and memory benchmarks (``hat_ebm_tf.benchmarks``).

The flags are ``hat_ebm_tf.benchmarks.flags``'s, shared with ``python -m
hat_ebm_tf.benchmarks``; the benchmarks themselves are imported when the
command runs, so that ``hat-ebm --help`` never pays for them.
"""

from hat_ebm_tf.benchmarks.flags import add_arguments


def register(subparsers):
    parser = subparsers.add_parser("bench", help="benchmark the sampler, FLOP rate, XLA, training and memory")
    add_arguments(parser)
    parser.set_defaults(func=run)


def run(args):
    from hat_ebm_tf.benchmarks.run import run_benchmarks  # TensorFlow: loaded only when the command runs

    run_benchmarks(args)
