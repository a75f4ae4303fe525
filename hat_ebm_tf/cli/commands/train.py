"""``hat-ebm train``: train a Hat EBM from a config file into a run directory."""

import dataclasses
import json
import sys

from hat_ebm_tf.argtypes import positive_int
from hat_ebm_tf.config import load_config


def register(subparsers):
    parser = subparsers.add_parser("train", help="train a Hat EBM from a config file")
    parser.add_argument(
        "--config", default="digits", help="YAML/JSON config file, or a shipped config name (default: digits)"
    )
    parser.add_argument("--run-dir", required=True, help="output run directory")
    parser.add_argument("--steps", type=positive_int, help="override training.steps (a larger value extends a run)")
    parser.add_argument("--seed", type=int, help="override the seed")
    parser.add_argument("--progress", action="store_true", help="per-step progress bar even when not on a terminal")
    parser.set_defaults(func=run)


def run(args):
    config = load_config(args.config)  # before TensorFlow loads: a bad config is named at once

    # TensorFlow: loaded only once the config is valid.
    from hat_ebm_tf.quality.report import format_report
    from hat_ebm_tf.training.train import run_training

    overrides = {}
    if args.steps is not None:  # a last shorter epoch ends the run at exactly --steps
        overrides["training"] = dataclasses.replace(config.training, steps=args.steps)
    if args.seed is not None:
        overrides["seed"] = args.seed
    config = dataclasses.replace(config, **overrides)
    summary = run_training(config, args.run_dir, verbose=1 if sys.stdout.isatty() or args.progress else 2)
    quality = summary.pop("quality", None)  # in full in quality.json; shown as its table
    print(json.dumps(summary, indent=1))
    if quality is not None:
        print(format_report(quality))
    print(f"run directory: {args.run_dir}")
