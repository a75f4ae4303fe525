"""``hat-ebm sample``: draw samples from a trained model."""

import numpy as np

from hat_ebm_tf.argtypes import positive_int
from hat_ebm_tf.cli.common import add_memory_flag, add_sampler_flags, check_memory_flag, load_model_and_sampler
from hat_ebm_tf.config import chain_bytes
from hat_ebm_tf.errors import ConfigError
from hat_ebm_tf.outputs import output_file
from hat_ebm_tf.run_dir import RunDir


def register(subparsers):
    parser = subparsers.add_parser("sample", help="draw samples from a trained model")
    parser.add_argument("model", help="run directory or .keras file")
    parser.add_argument("--num", type=positive_int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=positive_int, default=250)
    parser.add_argument(
        "--out",
        default="samples.npz",
        help="output .npz (array 'images', uint8 [N, H, W, C]); '.npz' is appended when missing, and a directory "
        "gets samples.npz",
    )
    parser.add_argument("--png", help="also write a grid of the first 100 samples")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.add_argument(
        "--quality",
        action="store_true",
        help="print the quality report of the samples against the data the run trained on (beside real images "
        "and a Gaussian baseline); needs a run directory with its config.yaml",
    )
    add_memory_flag(parser, "the --num samples and a --batch-size of running chains")
    add_sampler_flags(parser, "the run's evaluation sampler; a .keras file's own")
    parser.set_defaults(func=run)


def run(args):
    # TensorFlow and matplotlib: loaded only when the command runs.
    from hat_ebm_tf.data import model_range_to_uint8, uint8_to_model_range
    from hat_ebm_tf.plots import save_image_grid
    from hat_ebm_tf.quality.reference import reference_for
    from hat_ebm_tf.quality.report import format_report, quality_report

    source = None
    if args.quality:
        if args.num < 2:
            raise ConfigError("--quality needs --num >= 2 (for the Fréchet distance and KID)")
        source = RunDir.data_source(args.model)
        if source is None:
            raise ConfigError(
                f"--quality compares the samples with the data the run trained on, which a run directory's "
                f"{RunDir.CONFIG} names; {args.model!r} has none (a .keras file or an imported run)"
            )
    # Outputs first: a path that cannot be written fails before the sampling, not after.
    out = output_file(args.out, "--out", overwrite=args.overwrite, suffix=".npz", default_name="samples.npz")
    png = output_file(args.png, "--png", overwrite=args.overwrite) if args.png else None
    model, config = load_model_and_sampler(args.model, args)
    # The samples are held as float32, then uint8: 5 bytes a value; a batch of chains runs at once.
    size = 5 * args.num * int(np.prod(model.image_shape))
    chains = min(args.batch_size, args.num)
    parts = {
        f"--num {args.num} samples {list(model.image_shape)}": size,
        f"a batch of {chains} chains (--batch-size {args.batch_size})": chains
        * chain_bytes(model.image_shape, model.latent_shape, model.hat.width),
    }
    check_memory_flag(parts, args)

    images = model_range_to_uint8(model.sample(args.num, seed=args.seed, batch_size=args.batch_size, config=config))
    np.savez_compressed(out, images=images)
    if png:
        save_image_grid(images[:100], png)
    print(f"wrote {len(images)} samples {list(images.shape[1:])} to {out}")
    if args.quality:
        print(format_report(quality_report(uint8_to_model_range(images).numpy(), reference_for(source))))
