"""Helpers shared by the tests: tiny models and configs, and the installed ``hat-ebm`` command."""

import os
import subprocess
import sys
from pathlib import Path

import keras
import pytest
import yaml

from hat_ebm_tf.autoencoder import Autoencoder
from hat_ebm_tf.model import HatEBM
from hat_ebm_tf.networks import Generator, HatNetwork, RetrofitDecoder, RetrofitEncoder
from hat_ebm_tf.sampler import LangevinConfig
from hat_ebm_tf.training.config import CONFIG_DIR

TINY_SAMPLER = LangevinConfig(num_steps=3, step_size=0.05, temperature=1e-2, max_residual_norm=1.0)
JOINT_SAMPLER = LangevinConfig(
    num_steps=3, step_size=0.05, latent_step_size=0.05, temperature=1e-2, update_latents=True, tau=1.0
)


def tiny_model(mode="synthesis", sampler=None, bank_size=32, seed=0, **kwargs):
    """A compiled 16×16×1 HatEBM with width-8 networks and a 4-d latent."""
    sampler = sampler or (TINY_SAMPLER if mode == "synthesis" else JOINT_SAMPLER)
    model = HatEBM(
        HatNetwork(16, 8, 1),
        Generator(16, 8, 1, latent_dim=4),
        mode=mode,
        sampler=sampler,
        bank_size=bank_size,
        seed=seed,
        **kwargs,
    )
    model.compile(
        hat_optimizer=keras.optimizers.Adam(1e-3, use_ema=True, ema_momentum=0.9),
        generator_optimizer=keras.optimizers.Adam(1e-3) if mode == "synthesis" else None,
    )
    return model


def tiny_autoencoder(latent_noise=0.02, seed=0, optimizer=None):
    """A compiled 16×16×1 ``Autoencoder`` of width 8 with an 8×8×1 latent grid (default optimizer: Adam 3e-3)."""
    model = Autoencoder(
        RetrofitEncoder(width=8, channels=1, image_size=16),
        RetrofitDecoder(width=8, channels=1, latent_shape=(8, 8, 1)),
        latent_noise=latent_noise,
        loss_factor=1000.0,
        seed=seed,
    )
    model.compile(optimizer=optimizer or keras.optimizers.Adam(3e-3))
    return model


def tiny_digits_config(**training):
    """The shipped digits config as a dict, tiny: width 8, a 4-d latent, 2 Langevin steps, 4 evaluation samples.

    Args:
        **training: settings of its ``training`` section, over batch size 4 and bank size 16.
    """
    values = yaml.safe_load((CONFIG_DIR / "digits.yaml").read_text())
    values["networks"].update(hat_width=8, generator_width=8, latent_dim=4)
    values["sampler"]["num_steps"] = 2
    values["training"].update({"batch_size": 4, "bank_size": 16, **training})
    values["evaluation"] = {"num_samples": 4, "batch_size": 4}
    return values


HAT_EBM = Path(sys.executable).parent / "hat-ebm"


def hat_ebm(*args, cwd):
    if not HAT_EBM.exists():
        pytest.fail(f"{HAT_EBM} is not installed: run `pip install .` (the README's test command does)")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [str(HAT_EBM), *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
