"""The ``hat-ebm`` command line.

hat-ebm train  --config digits --run-dir runs/digits [--steps N] [--seed S]
hat-ebm sample RUN_DIR_OR_MODEL --num N [--seed S] [--out FILE.npz] [--png FILE.png] [--steps K]
"""

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _positive_int(text):
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _train(args):
    from training.config import load_config
    from training.train import run_training

    config = load_config(args.config)
    overrides = {}
    if args.steps is not None:
        overrides["training"] = dataclasses.replace(
            config.training, steps=args.steps, steps_per_epoch=min(config.training.steps_per_epoch, args.steps)
        )
    if args.seed is not None:
        overrides["seed"] = args.seed
    config = dataclasses.replace(config, **overrides)
    summary = run_training(config, args.run_dir, verbose=1 if sys.stdout.isatty() or args.progress else 2)
    print(json.dumps(summary, indent=1))
    print(f"run directory: {args.run_dir}")


def load_trained_model(path):
    """A ``HatEBM`` from a run directory or a ``.keras`` file, with a named error if absent."""
    import keras

    import hat_ebm_tf  # noqa: F401 - registers the serializable classes
    from training.train import MODEL_FILE

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


def _sample(args):
    import numpy as np

    from hat_ebm_tf.data import model_range_to_uint8
    from training.plots import save_image_grid

    model = load_trained_model(args.model)
    config = model.sampler_config
    if args.steps is not None:
        config = dataclasses.replace(config, num_steps=args.steps)
    images = model.sample(args.num, seed=args.seed, batch_size=args.batch_size, config=config)
    images = model_range_to_uint8(images)
    np.savez_compressed(args.out, images=images)
    if args.png:
        save_image_grid(images[:100], args.png)
    print(f"wrote {len(images)} samples {list(images.shape[1:])} to {args.out}")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="hat-ebm", description="Hat EBM (Hill et al., NeurIPS 2022) in TensorFlow/Keras."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a Hat EBM from a config file")
    train.add_argument(
        "--config", default="digits", help="YAML/JSON config file, or a shipped config name (default: digits)"
    )
    train.add_argument("--run-dir", required=True, help="output run directory")
    train.add_argument("--steps", type=_positive_int, help="override training.steps")
    train.add_argument("--seed", type=int, help="override the seed")
    train.add_argument("--progress", action="store_true", help="force the per-step progress bar when not on a terminal")
    train.set_defaults(func=_train)

    sample = sub.add_parser("sample", help="draw samples from a trained model")
    sample.add_argument("model", help="run directory or .keras file")
    sample.add_argument("--num", type=_positive_int, default=100)
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--batch-size", type=_positive_int, default=250)
    sample.add_argument("--steps", type=int, help="override the number of Langevin steps")
    sample.add_argument("--out", default="samples.npz", help="output .npz (array 'images', uint8 [N, H, W, C])")
    sample.add_argument("--png", help="also write a grid of the first 100 samples")
    sample.set_defaults(func=_sample)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except ValueError as err:  # configs, shapes and values: a clear message, no traceback
        raise SystemExit(f"hat-ebm {args.command}: error: {err}") from err


if __name__ == "__main__":
    main()
