"""A run directory from the reference implementation's checkpoints (``hat-ebm import-reference``).

The authors' released models (TF 2.6 ``save_weights("*.ckpt")`` checkpoints of
the hat network and the SN-GAN generator or retrofit decoder) become a
``model.keras`` that ``hat-ebm sample`` (and the export) load like any run.
TensorFlow and the model are imported by the functions that build it, so that
the command line checks its flags and directory (``check_import``) first.
"""

import dataclasses
import json
from pathlib import Path

from hat_ebm_tf.errors import ConfigError, RunDirError
from hat_ebm_tf.modes import get_mode
from hat_ebm_tf.outputs import check_writable_dir
from hat_ebm_tf.run_dir import RunDir

# The default sampler: the reference's CIFAR-10 synthesis evaluation (docs/reference.md),
# plus, in the joint modes, latent steps of LangevinConfig.for_form. Settings left
# out keep LangevinConfig's defaults (no clipping, noise on, τ = 0, init_scale_latent 1).
REFERENCE_EVALUATION = {"num_steps": 125, "step_size": 5e-4, "temperature": 1e-8, "init_scale_residual": 0.01}


@dataclasses.dataclass(frozen=True)
class ReferenceCheckpoints:
    """Checkpoint prefixes (``*.ckpt``) of a reference model.

    Attributes:
        hat: the hat (EBM) network.
        generator: the SN-GAN generator (synthesis, refine), or None.
        decoder: the retrofit decoder (retrofit), or None.
        encoder: the retrofit encoder, or None; given, ``autoencoder.keras`` is written too.
    """

    hat: str
    generator: str | None = None
    decoder: str | None = None
    encoder: str | None = None


def check_import(run_dir, checkpoints, mode, overwrite):
    """Refuse an import that cannot work, before any checkpoint is read.

    The mode must match the checkpoints (a decoder for retrofit, a generator
    otherwise); ``run_dir`` must be writable, hold no trained run, and (unless
    ``overwrite``) no earlier import.

    Raises:
        ConfigError: ``--mode`` does not match the checkpoints given.
        RunDirError: ``run_dir`` cannot take the import.
    """
    decoder = get_mode(mode, hat_ebm=True, where="--mode").generator == "decoder"
    if decoder != (checkpoints.decoder is not None):
        raise ConfigError(f"--mode {mode} needs --{'decoder' if decoder else 'generator'}")
    run_dir = Path(run_dir)
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


def import_reference(run_dir, checkpoints, mode, image_size, sampler, out_factor=None, latent_hw=16, bank_size=10000):
    """Build a ``HatEBM`` from reference checkpoints and write it as a run directory (after ``check_import``).

    Args:
        run_dir: the output run directory.
        checkpoints: ``ReferenceCheckpoints``.
        mode: ``synthesis``, ``refine`` or ``retrofit``.
        image_size: the checkpoints' image size (checked).
        sampler: the model's ``LangevinConfig``.
        out_factor: generator output scale (default: the mode's ``out_factor``, 1.0 refine, 2.0 else).
        latent_hw: retrofit latent grid size.
        bank_size: persistent bank size (synthesis).

    Returns:
        dict: the import record written to ``imported.json``.

    Raises:
        ConfigError: ``image_size`` is not the checkpoints' (``--image-size``).
    """
    # TensorFlow and the model: loaded only for the import itself (the command line checks it first).
    from hat_ebm_tf.model import HatEBM
    from hat_ebm_tf.reference import decoder_from_reference, generator_from_reference, hat_from_reference

    out_factor = out_factor if out_factor is not None else get_mode(mode, hat_ebm=True).out_factor
    hat = hat_from_reference(checkpoints.hat)
    if checkpoints.decoder:
        generator = decoder_from_reference(checkpoints.decoder, out_factor, latent_hw=(latent_hw, latent_hw))
    else:
        generator = generator_from_reference(checkpoints.generator, out_factor)
    for name, net in (("hat network", hat), ("generator", generator)):
        if net.image_size != image_size:
            raise ConfigError(
                f"--image-size {image_size}: the {name} checkpoint is for {net.image_size}×{net.image_size}"
            )
    model = HatEBM(hat, generator, mode=mode, sampler=sampler, bank_size=bank_size)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    model.save(run_dir / RunDir.MODEL)
    record = {
        "imported_from": {"hat": checkpoints.hat, "generator": checkpoints.generator, "decoder": checkpoints.decoder},
        "mode": mode,
        "image_size": image_size,
        "out_factor": out_factor,
        "sampler": sampler.to_dict(),
    }
    if checkpoints.encoder:
        _write_autoencoder(checkpoints.encoder, generator, run_dir)
        record["imported_from"]["encoder"] = checkpoints.encoder
    (run_dir / RunDir.IMPORT_RECORD).write_text(json.dumps(record, indent=1))
    return record


def _write_autoencoder(encoder_path, decoder, run_dir):
    """Write ``autoencoder.keras``: the reference encoder with the imported decoder."""
    # TensorFlow and the model: as in import_reference.
    from hat_ebm_tf.autoencoder import Autoencoder
    from hat_ebm_tf.reference import encoder_from_reference

    encoder = encoder_from_reference(encoder_path, image_size=decoder.image_size)
    Autoencoder(encoder, decoder).save(Path(run_dir) / RunDir.AUTOENCODER)
