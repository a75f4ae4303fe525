"""Shared fixtures: tiny networks and models so that the suite stays fast."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf

# Two logical CPU devices, so that tf.distribute strategies run for real in
# the tests; this must happen before TensorFlow initialises its devices.
tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2
)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from hat_ebm_tf.model import HatEBM  # noqa: E402
from hat_ebm_tf.networks import Generator, HatNetwork  # noqa: E402
from hat_ebm_tf.sampler import LangevinConfig  # noqa: E402

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


@pytest.fixture
def digits16():
    from hat_ebm_tf.data import load_digits

    return load_digits(16)[:64]


@pytest.fixture
def rng():
    return np.random.default_rng(0)
