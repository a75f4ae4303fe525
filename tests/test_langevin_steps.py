"""The pieces of a Langevin update that the sampler and MALA share (``hat_ebm_tf.langevin_steps``)."""

import numpy as np
import tensorflow as tf

from hat_ebm_tf import langevin_steps as steps
from hat_ebm_tf.sampler_config import LangevinConfig


def test_the_energy_gradient_and_the_latent_drift_through_the_generator(rng):
    x = rng.normal(size=(3, 2, 2, 1)).astype(np.float32)
    energy, gradient = steps.energy_and_gradient(
        lambda images: steps.row_sum(tf.square(images))[:, None], tf.constant(x)
    )
    np.testing.assert_allclose(energy, np.sum(x**2, axis=(1, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(gradient, 2 * x, rtol=1e-6)
    # G(z) = z·A (a linear map to images): the drift is Aᵀ g / T.
    a = rng.normal(size=(4, 4)).astype(np.float32)
    z = tf.constant(rng.normal(size=(3, 4)).astype(np.float32))
    tape, base = steps.generate_on_tape(lambda z: tf.reshape(z @ a, [-1, 2, 2, 1]), z)
    g = tf.constant(rng.normal(size=(3, 2, 2, 1)).astype(np.float32))
    expected = tf.reshape(g, [3, 4]).numpy() @ a.T / 0.5
    np.testing.assert_allclose(steps.latent_drift(tape, base, z, g, 0.5), expected, rtol=1e-5, atol=1e-6)


def test_the_residual_drift_adds_the_prior_and_bounds_each_row():
    gx = tf.fill([2, 2, 2, 1], 3.0)
    y = tf.ones([2, 2, 2, 1])
    np.testing.assert_allclose(steps.residual_drift(gx, y, 2.0, 0.5, None), tf.fill([2, 2, 2, 1], 1.5 + 1.0))
    clipped = steps.residual_drift(gx, y, 1.0, 0.0, clip=1.0)
    np.testing.assert_allclose(np.sqrt(steps.row_sum(tf.square(clipped))), [1.0, 1.0], rtol=1e-6)
    assert float(steps.mean_drift_step(0.5, clipped)) == np.float32(0.5)


def test_the_constants_and_tensors_of_a_chain():
    config = LangevinConfig(step_size=0.1, latent_step_size=0.2, temperature=2.0, max_residual_norm=0.01)
    temperature, half_eps_sq, half_eps_z_sq, clip = steps.update_constants(config)
    assert float(temperature) == 2.0 and np.isclose(half_eps_sq, 0.005) and np.isclose(half_eps_z_sq, 0.02)
    assert np.isclose(clip, 0.01 / 0.005)  # a drift step (ε²/2)·g of at most max_residual_norm
    assert steps.update_constants(LangevinConfig())[3] is None
    latents, residuals, seeds = steps.chain_tensors(np.zeros((2, 3)), np.zeros((2, 1)), [[0, 0], [0, 1]])
    assert latents.dtype == residuals.dtype == tf.float32 and seeds.shape == (2, 2)
