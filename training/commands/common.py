"""Helpers shared by the ``hat-ebm`` sub-commands."""

import argparse
import os
from pathlib import Path

MODEL_FILE = "model.keras"


def positive_int(text):
    """argparse type: an integer > 0."""
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def load_trained_model(path):
    """A ``HatEBM`` from a run directory or a ``.keras`` file; a named error if absent or unreadable."""
    import keras

    import hat_ebm_tf  # noqa: F401 - registers the serializable classes

    path = Path(path)
    model_file = path / MODEL_FILE if path.is_dir() else path
    if not model_file.is_file():
        raise SystemExit(
            f"hat-ebm: no trained model at {os.fspath(model_file)!r} "
            f"(expected a run directory holding {MODEL_FILE}, or a .keras file)"
        )
    try:
        return keras.saving.load_model(model_file)
    except (ValueError, OSError, KeyError) as err:
        raise SystemExit(f"hat-ebm: cannot load {os.fspath(model_file)!r}: {err}") from err
