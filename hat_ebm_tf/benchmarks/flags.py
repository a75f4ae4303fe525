"""The benchmark flags, shared by ``hat-ebm bench`` and ``python -m hat_ebm_tf.benchmarks``.

This module imports nothing heavy (argparse only), so that ``hat-ebm --help``
and the other sub-commands never pay for TensorFlow; it never imports the CLI.
"""

import argparse

from hat_ebm_tf.argtypes import non_negative_int, positive_int

SECTIONS = ("langevin", "reference", "flops", "jit", "train", "ops", "memory")
MIXED_PRECISION_CHOICES = ("auto", "always", "never")


def section_list(text):
    """argparse type: a comma-separated list of known section names, in run order."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = sorted(set(names) - set(SECTIONS))
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown sections {unknown or [text]}; known sections are {list(SECTIONS)}")
    return tuple(name for name in SECTIONS if name in names)


def add_arguments(parser):
    """Add the benchmark flags to ``parser``; unset size flags take the full (or ``--tiny``) preset."""
    parser.add_argument("--image-size", type=positive_int, help="image size (default 32; --tiny 16)")
    parser.add_argument("--width", type=positive_int, help="hat and generator width (default 64; --tiny 16)")
    parser.add_argument("--batch", type=positive_int, help="chains per batch (default 32; --tiny 4)")
    parser.add_argument("--steps", type=positive_int, help="Langevin steps per timed call (default 20; --tiny 2)")
    parser.add_argument(
        "--repeats", type=positive_int, help="timed repeats; figures are their medians (default 10; --tiny 2)"
    )
    parser.add_argument(
        "--warmup", type=non_negative_int, help="untimed warm-up calls before timing (default 2; --tiny 1)"
    )
    parser.add_argument("--out", default="benchmark.json", help="JSON file of every figure (default benchmark.json)")
    parser.add_argument(
        "--sections",
        type=section_list,
        default=SECTIONS,
        help=f"comma-separated sections to run (default all: {','.join(SECTIONS)})",
    )
    parser.add_argument(
        "--mixed-precision",
        choices=MIXED_PRECISION_CHOICES,
        default="auto",
        help="also time the sampler in mixed precision: auto (where the device supports it), always, never",
    )
    parser.add_argument("--tiny", action="store_true", help="smoke-test sizes (as CI runs it); figures are not useful")
