"""argparse value types shared by the ``hat-ebm`` commands and the benchmarks (no TensorFlow).

A flag's value is checked when the command line is parsed, before any work:
a bad one exits with code 2 and a message that names the flag.
"""

import argparse
import re

from hat_ebm_tf.config import INT64_MAX
from hat_ebm_tf.sampler_config import float32_problem

# A TF Serving model name: the directory BASE_PATH/NAME, and the name in models.config and in requests.
SERVING_NAME_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
SERVING_NAME_RULE = "a model name is ASCII letters, digits, '_', '.' or '-', not starting with '.' or '-'"


def positive_int(text):
    """argparse type: an integer > 0."""
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def positive_int64(text):
    """argparse type: an integer in [1, 2⁶³ − 1] (e.g. a TF Serving version, an int64)."""
    value = int(text)
    if not 0 < value <= INT64_MAX:
        raise argparse.ArgumentTypeError(f"expected an integer in [1, {INT64_MAX}] (int64), got {text}")
    return value


def non_negative_int(text):
    """argparse type: an integer >= 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text}")
    return value


def _float32(text, zero):
    """``text`` as a float, refused unless ``float32_problem`` (the settings' one rule) accepts it."""
    value = float(text)
    problem = float32_problem(value, zero)
    if problem:
        raise argparse.ArgumentTypeError(f"{text} {problem}")
    return value


def positive_float(text):
    """argparse type: a number > 0, finite and a normal float32 number (``float32_problem``)."""
    return _float32(text, zero=False)


def non_negative_float(text):
    """argparse type: 0, or a number that ``positive_float`` takes."""
    return _float32(text, zero=True)


def positive_float_or_none(text):
    """argparse type: ``none`` for no value, or a number that ``positive_float`` takes."""
    return None if text.lower() == "none" else positive_float(text)


def probability(text):
    """argparse type: a number strictly between 0 and 1."""
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text}")
    return value


def serving_name(text):
    """argparse type: a TF Serving model name (``SERVING_NAME_RULE``)."""
    if not SERVING_NAME_PATTERN.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{SERVING_NAME_RULE}, got {text!r}")
    return text
