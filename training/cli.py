"""The ``hat-ebm`` command line; sub-commands live in ``training.commands``."""

import argparse
import importlib
import os
import pkgutil

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import training.commands


def build_parser():
    parser = argparse.ArgumentParser(
        prog="hat-ebm", description="Hat EBM (Hill et al., NeurIPS 2022) in TensorFlow/Keras."
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for info in sorted(pkgutil.iter_modules(training.commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"training.commands.{info.name}")
        if hasattr(module, "register"):
            module.register(subparsers)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    # Imported after parsing (it pulls in Keras), so that --help answers at once.
    from training.callbacks import TrainingDiverged

    try:
        args.func(args)
    except (ValueError, TrainingDiverged) as err:  # configs, shapes, values, divergence: a clear message
        raise SystemExit(f"hat-ebm {args.command}: error: {err}") from err


if __name__ == "__main__":
    main()
