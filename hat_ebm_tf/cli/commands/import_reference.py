"""``hat-ebm import-reference``: a run directory from the reference implementation's checkpoints.

The job is ``hat_ebm_tf.training.reference_import``.
"""

from pathlib import Path

from hat_ebm_tf.argtypes import positive_float, positive_int
from hat_ebm_tf.cli.common import SAMPLER_FLAGS, add_sampler_flags, apply_sampler_flags
from hat_ebm_tf.modes import HAT_EBM_MODES, get_mode
from hat_ebm_tf.run_dir import RunDir
from hat_ebm_tf.sampler_config import LangevinConfig
from hat_ebm_tf.training.reference_import import (
    REFERENCE_EVALUATION,
    ReferenceCheckpoints,
    check_import,
    import_reference,
)


def register(subparsers):
    parser = subparsers.add_parser(
        "import-reference", help="build a run directory from the reference implementation's checkpoints"
    )
    parser.add_argument("--hat", required=True, help="hat (EBM) network checkpoint prefix, e.g. ebm.ckpt")
    nets = parser.add_mutually_exclusive_group(required=True)
    nets.add_argument("--generator", help="SN-GAN generator checkpoint prefix (synthesis, refine)")
    nets.add_argument("--decoder", help="retrofit decoder checkpoint prefix (retrofit)")
    parser.add_argument("--encoder", help="retrofit encoder checkpoint: also write autoencoder.keras")
    parser.add_argument("--mode", choices=HAT_EBM_MODES, required=True)
    parser.add_argument("--image-size", type=positive_int, required=True, help="must match the checkpoints")
    parser.add_argument(
        "--out-factor", type=positive_float, help="generator output scale (default: 1.0 refine, 2.0 else)"
    )
    parser.add_argument("--latent-hw", type=positive_int, default=16, help="retrofit latent grid size (default 16)")
    parser.add_argument("--run-dir", required=True, help="output run directory")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier import in --run-dir")
    parser.add_argument("--bank-size", type=positive_int, default=10000, help="persistent bank size (synthesis)")
    defaults = " ".join(f"{SAMPLER_FLAGS[field][0]} {value:g}" for field, value in REFERENCE_EVALUATION.items())
    add_sampler_flags(
        parser,
        f"the reference's CIFAR-10 evaluation sampler, {defaults}, no clipping, noise on, "
        "and in refine/retrofit the joint form's default latent step",
    )
    parser.set_defaults(func=run)


def run(args):

    checkpoints = ReferenceCheckpoints(args.hat, args.generator, args.decoder, args.encoder)
    check_import(args.run_dir, checkpoints, args.mode, args.overwrite)
    sampler = apply_sampler_flags(LangevinConfig.for_form(get_mode(args.mode).joint, **REFERENCE_EVALUATION), args)
    import_reference(
        args.run_dir, checkpoints, args.mode, args.image_size, sampler, args.out_factor, args.latent_hw, args.bank_size
    )
    print(f"wrote {Path(args.run_dir) / RunDir.MODEL} ({args.mode}, {args.image_size}×{args.image_size})")
