"""``hat-ebm train``: train a Hat EBM from a config file, or from the recipe derived for a data source."""

import dataclasses
import json
import sys

import yaml

from hat_ebm_tf import recipe
from hat_ebm_tf.argtypes import positive_int
from hat_ebm_tf.config import load_config, parse_config
from hat_ebm_tf.errors import ConfigError


def register(subparsers):
    parser = subparsers.add_parser(
        "train",
        help="train a Hat EBM from a config file, or on your own images with a recipe derived from them",
        description="Train a Hat EBM into a run directory. With --config, from a config file; with --data, from the "
        "recipe derived from the data's image size, channels and number of images (printed, and written to the run's "
        "config.yaml). A config file with 'base: recipe' starts from that recipe and overrides single keys.",
    )
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--config", help="YAML/JSON config file, or a shipped config name (default: digits)")
    what.add_argument(
        "--data",
        help="train on this data source with the derived recipe: a folder of PNG/JPEG images, a .npz/.npy file of "
        "uint8 [N, H, W, C] images, tfds:NAME[:SPLIT], digits, glyphs or photo-patches",
    )
    parser.add_argument("--run-dir", required=True, help="output run directory")
    parser.add_argument(
        "--image-size",
        type=positive_int,
        help=f"with --data: the model's side, one of {list(recipe.SIZES)} (default: the largest at most the images' "
        f"own and {recipe.DEFAULT_MAX_SIZE}; larger sizes are GPU work)",
    )
    parser.add_argument("--channels", type=int, choices=(1, 3), help="with --data: 1 (grey) or 3 (default: the data's)")
    parser.add_argument("--steps", type=positive_int, help="override training.steps (a larger value extends a run)")
    parser.add_argument("--seed", type=int, help="override the seed")
    parser.add_argument("--progress", action="store_true", help="per-step progress bar even when not on a terminal")
    parser.set_defaults(func=run)


def _config(args):
    """The run's ``ExperimentConfig``: the config file's, or the recipe of ``--data``."""
    if args.data is None:
        if args.image_size is not None or args.channels is not None:
            raise ConfigError("--image-size and --channels go with --data (a config file sets data.image_size)")
        config = load_config(args.config or "digits")
    else:
        facts = recipe.inspect_source(args.data)
        values = recipe.derive(facts, args.image_size, args.channels, args.steps, args.seed or 0)
        config = parse_config(values, where=f"the recipe for {args.data}")
    overrides = {}
    if args.steps is not None:  # a last shorter epoch ends the run at exactly --steps
        overrides["training"] = dataclasses.replace(config.training, steps=args.steps)
    if args.seed is not None:
        overrides["seed"] = args.seed
    return dataclasses.replace(config, **overrides)


def run(args):
    config = _config(args)  # before TensorFlow loads: a bad config is named at once
    if args.data is not None:
        print(f"recipe for {args.data}:\n{yaml.safe_dump(config.to_dict(), sort_keys=False)}", flush=True)

    # TensorFlow: loaded only once the config is valid.
    from hat_ebm_tf.quality.report import format_report
    from hat_ebm_tf.training.train import run_training

    summary = run_training(config, args.run_dir, verbose=1 if sys.stdout.isatty() or args.progress else 2)
    quality = summary.pop("quality", None)  # in full in quality.json; shown as its table
    print(json.dumps(summary, indent=1))
    if quality is not None:
        print(format_report(quality))
    print(f"run directory: {args.run_dir}")
