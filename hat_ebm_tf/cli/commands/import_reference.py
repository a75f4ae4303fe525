"""``hat-ebm import-reference``: turn the reference implementation's checkpoints into a run directory.

The authors' released models (TF 2.6 ``save_weights("*.ckpt")`` checkpoints of
the hat network and the SN-GAN generator or retrofit decoder) become a
``model.keras`` that ``hat-ebm sample`` (and the export) load like any run.
"""

import json
from pathlib import Path

from hat_ebm_tf.argtypes import positive_int
from hat_ebm_tf.cli.common import SAMPLER_FLAGS, add_sampler_flags, apply_sampler_flags
from hat_ebm_tf.training.run_dir import RunDir

# The default sampler: the reference's CIFAR-10 synthesis evaluation (REFERENCE.md),
# plus, in the joint modes, latent steps of LangevinConfig.for_form. Settings left
# out keep LangevinConfig's defaults (no clipping, noise on, τ = 0, init_scale_latent 1).
REFERENCE_EVALUATION = {"num_steps": 125, "step_size": 5e-4, "temperature": 1e-8, "init_scale_residual": 0.01}


def register(subparsers):
    parser = subparsers.add_parser(
        "import-reference", help="build a run directory from the reference implementation's checkpoints"
    )
    parser.add_argument("--hat", required=True, help="hat (EBM) network checkpoint prefix, e.g. ebm.ckpt")
    nets = parser.add_mutually_exclusive_group(required=True)
    nets.add_argument("--generator", help="SN-GAN generator checkpoint prefix (synthesis, refine)")
    nets.add_argument("--decoder", help="retrofit decoder checkpoint prefix (retrofit)")
    parser.add_argument("--encoder", help="retrofit encoder checkpoint: also write autoencoder.keras")
    parser.add_argument("--mode", choices=("synthesis", "refine", "retrofit"), required=True)
    parser.add_argument("--image-size", type=positive_int, required=True, help="must match the checkpoints")
    parser.add_argument("--out-factor", type=float, help="generator output scale (default: 1.0 refine, 2.0 else)")
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
    from hat_ebm_tf.model import HatEBM
    from hat_ebm_tf.reference import decoder_from_reference, generator_from_reference, hat_from_reference
    from hat_ebm_tf.sampler import LangevinConfig

    joint = args.mode != "synthesis"
    if (args.mode == "retrofit") != (args.decoder is not None):
        raise ValueError(f"--mode {args.mode} needs --{'decoder' if args.mode == 'retrofit' else 'generator'}")
    check_import_dir(Path(args.run_dir), args.overwrite)
    sampler = apply_sampler_flags(LangevinConfig.for_form(joint, **REFERENCE_EVALUATION), args)
    out_factor = args.out_factor if args.out_factor is not None else (1.0 if args.mode == "refine" else 2.0)
    hat = hat_from_reference(args.hat)
    if args.decoder:
        generator = decoder_from_reference(args.decoder, out_factor, latent_hw=(args.latent_hw, args.latent_hw))
    else:
        generator = generator_from_reference(args.generator, out_factor)
    for name, net in (("hat network", hat), ("generator", generator)):
        if net.image_size != args.image_size:
            raise ValueError(
                f"--image-size {args.image_size}: the {name} checkpoint is for {net.image_size}×{net.image_size}"
            )
    model = HatEBM(hat, generator, mode=args.mode, sampler=sampler, bank_size=args.bank_size)
    run_dir = Path(args.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    model.save(run_dir / RunDir.MODEL)
    record = {
        "imported_from": {"hat": args.hat, "generator": args.generator, "decoder": args.decoder},
        "mode": args.mode,
        "image_size": args.image_size,
        "out_factor": out_factor,
        "sampler": sampler.to_dict(),
    }
    if args.encoder:
        write_autoencoder(args.encoder, generator, run_dir)
        record["imported_from"]["encoder"] = args.encoder
    (run_dir / RunDir.IMPORT_RECORD).write_text(json.dumps(record, indent=1))
    print(f"wrote {run_dir / RunDir.MODEL} ({args.mode}, {args.image_size}×{args.image_size})")


def check_import_dir(run_dir, overwrite):
    """Refuse (``RunDirError``) an unusable ``--run-dir``, before any checkpoint is read.

    It must be writable, hold no trained run, and (unless ``overwrite``) no earlier import.
    """
    from hat_ebm_tf.errors import RunDirError
    from hat_ebm_tf.training.outputs import check_writable_dir

    check_writable_dir(run_dir, "--run-dir")
    trained = [name for name in (RunDir.CONFIG, RunDir.CHECKPOINTS) if (run_dir / name).exists()]
    if trained:
        raise RunDirError(
            f"--run-dir {run_dir} holds a trained run ({', '.join(trained)}): an imported model would not match its "
            "config, samples and checkpoints; use a new --run-dir"
        )
    earlier = [name for name in (RunDir.MODEL, RunDir.IMPORT_RECORD, RunDir.AUTOENCODER) if (run_dir / name).exists()]
    if earlier and not overwrite:
        raise RunDirError(
            f"--run-dir {run_dir} holds an earlier import ({', '.join(earlier)}); pass --overwrite to replace it"
        )


def write_autoencoder(encoder_path, decoder, run_dir):
    """Write ``autoencoder.keras``: the reference encoder with the imported decoder."""
    from hat_ebm_tf.autoencoder import Autoencoder
    from hat_ebm_tf.reference import encoder_from_reference

    encoder = encoder_from_reference(encoder_path, image_size=decoder.image_size)
    Autoencoder(encoder, decoder).save(Path(run_dir) / RunDir.AUTOENCODER)
