"""MALA (hat_ebm_tf.mala): exact on analytic targets where unadjusted Langevin is biased; per row; mirrored."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf
import yaml

from hat_ebm_tf.distribute import mirrored_strategy
from hat_ebm_tf.evaluation.analytic import CASES, IMAGE_SHAPE, draw
from hat_ebm_tf.rng import row_seeds
from hat_ebm_tf.sampler import langevin
from hat_ebm_tf.sampler_config import LangevinConfig
from tests.helpers import JOINT_SAMPLER, TINY_SAMPLER, fit_on_digits, tiny_model

# Tolerances of MALA's moments from 500 chains · 16 pixels (standard errors: mean ≤ 0.009, variance ≤ 1.7 %).
MEAN_TOLERANCE, VARIANCE_TOLERANCE = 0.03, 0.05


@pytest.mark.parametrize("case", sorted(CASES))
def test_mala_matches_the_targets_moments_where_unadjusted_langevin_is_biased(case):
    _, target, config = CASES[case]
    unadjusted, acceptance_ula = draw(target, config, num_chains=500)
    mala, acceptance = draw(target, dataclasses.replace(config, metropolis=True), num_chains=500)
    assert acceptance_ula == 1.0 and 0.02 < acceptance < 0.95
    assert mala.mean() == pytest.approx(target.mean, abs=MEAN_TOLERANCE)
    assert mala.var() == pytest.approx(target.variance, rel=VARIANCE_TOLERANCE)
    # The same chains without the accept step miss a moment by more than the tolerance.
    biased_mean = abs(unadjusted.mean() - target.mean) > MEAN_TOLERANCE
    assert biased_mean or abs(unadjusted.var() / target.variance - 1) > VARIANCE_TOLERANCE


def test_joint_form_matches_the_gaussian_covariance_of_latents_and_residuals(rng):
    # G(z) = z·A and H(x) = ||x||²/(2s²), τ > 0: p(z, y) is a Gaussian with precision
    # [[AᵀA/s², Aᵀ/s²], [A/s², (1/s² + 2τ)·I]]; each Metropolis-within-Gibbs move leaves it invariant.
    # 4000 chains: the sampling error of a variance is about sqrt(2 / n) = 2 % (1000 chains: 4.5 %, and the
    # deterministic draws of seed 0 sat 2.8 standard errors off).
    s, tau, n = 1.0, 0.5, 4000
    a = rng.standard_normal((2, 16)) * 0.5
    precision = np.block([[a @ a.T / s**2, a / s**2], [a.T / s**2, (1 / s**2 + 2 * tau) * np.eye(16)]])
    covariance = np.linalg.inv(precision)
    config = LangevinConfig(
        num_steps=600,  # 300 steps from z = 0 still left the latent variance 2 % high
        step_size=0.9,
        latent_step_size=0.9,
        temperature=1.0,
        update_latents=True,
        tau=tau,
        metropolis=True,
    )
    a32 = tf.constant(a, tf.float32)
    out = tf.function(
        lambda: langevin(
            lambda x: tf.reduce_sum(tf.square(x), axis=[1, 2, 3]) / (2 * s**2),
            lambda z: tf.reshape(z @ a32, [-1, *IMAGE_SHAPE]),
            tf.zeros([n, 2]),
            tf.zeros([n, *IMAGE_SHAPE]),
            row_seeds(0, n),
            config,
        )
    )()
    draws = np.concatenate([out.latents.numpy(), out.residuals.numpy().reshape(n, 16)], axis=1).astype(np.float64)
    acceptance_z, acceptance_y = out.acceptance_latent.numpy(), out.acceptance_res.numpy()
    assert 0.05 < acceptance_z.mean() < 0.95 and 0.05 < acceptance_y.mean() < 0.95
    assert np.all((acceptance_z >= 0) & (acceptance_z <= 1))
    np.testing.assert_allclose(np.cov(draws[:, :2].T), covariance[:2, :2], atol=0.12 * np.abs(covariance[:2, :2]).max())
    assert np.diag(np.cov(draws[:, 2:].T)).mean() == pytest.approx(np.diag(covariance)[2:].mean(), rel=0.06)
    assert np.abs(draws.mean(axis=0)).max() < 0.15


def _chain(config, n, first_step=0, start=None, seed=3, offset=0):
    energy = lambda x: tf.reduce_sum(tf.square(x - 0.2), axis=[1, 2, 3])  # noqa: E731
    generator = lambda z: tf.reshape(tf.tile(z, [1, 8]), [-1, *IMAGE_SHAPE])  # noqa: E731
    z, y = start if start is not None else (tf.ones([n, 2]) * 0.3, tf.zeros([n, *IMAGE_SHAPE]))
    return tf.function(lambda z, y: langevin(energy, generator, z, y, row_seeds(seed, n, offset), config, first_step))(
        z, y
    )


@pytest.mark.parametrize("metropolis", [False, True])
@pytest.mark.parametrize("joint", [False, True])
def test_a_chain_run_in_pieces_is_the_same_chain(metropolis, joint):
    config = LangevinConfig(
        num_steps=6,
        step_size=0.3,
        latent_step_size=0.2 if joint else 0.0,
        temperature=1.0,
        update_latents=joint,
        max_residual_norm=0.5,
        metropolis=metropolis,
    )
    whole = _chain(config, 5)
    piece = dataclasses.replace(config, num_steps=2)
    state, accepted = None, []
    for first in range(0, 6, 2):
        out = _chain(piece, 5, first_step=tf.constant(first), start=state)
        state = (out.latents, out.residuals)
        accepted.append(out.acceptance_res.numpy())
    # The same noise and accept draws at every step: a wrong step offset would move the chain by O(step size).
    # Within 1e-6, not bitwise: the CPU kernels may round the last bit differently in a 2- and a 6-step loop,
    # and MALA carries H and ∇H of the current state, which a piece computes at its start, outside the loop.
    np.testing.assert_allclose(out.images, whole.images, rtol=0, atol=1e-6)
    np.testing.assert_allclose(out.latents, whole.latents, rtol=0, atol=1e-6)
    np.testing.assert_allclose(np.mean(accepted, axis=0), whole.acceptance_res.numpy(), atol=1e-6)


def test_mala_rows_do_not_depend_on_their_batch_and_reject_some():
    config = LangevinConfig(
        num_steps=8, step_size=0.8, latent_step_size=0.5, temperature=1.0, update_latents=True, metropolis=True
    )
    big = _chain(config, 6)
    part = _chain(config, 2, offset=3, start=(tf.ones([2, 2]) * 0.3, tf.zeros([2, *IMAGE_SHAPE])))
    np.testing.assert_allclose(part.images, big.images[3:5], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(part.acceptance_res, big.acceptance_res[3:5])
    assert 0 < float(tf.reduce_mean(big.acceptance_res)) < 1 and 0 < float(tf.reduce_mean(big.acceptance_latent)) < 1
    # Unadjusted: every update is taken.
    plain = _chain(dataclasses.replace(config, metropolis=False), 6)
    np.testing.assert_array_equal(plain.acceptance_res, np.ones(6))


def test_metropolis_needs_noise():
    with pytest.raises(ValueError, match="metropolis=True needs noise=True"):
        LangevinConfig(noise=False, metropolis=True)


def _train_two_steps(strategy, weights, mode):
    sampler = dataclasses.replace(TINY_SAMPLER if mode == "synthesis" else JOINT_SAMPLER, metropolis=True)
    with strategy.scope():
        model = tiny_model(mode=mode, sampler=sampler, bank_size=64)
        model.compile(
            hat_optimizer=keras.optimizers.SGD(1e-5),
            generator_optimizer=keras.optimizers.SGD(1e-5) if mode == "synthesis" else None,
        )
        model.set_weights(weights)
    history = fit_on_digits(strategy, model, steps=2)
    return model, {name: values[-1] for name, values in history.history.items()}


@pytest.mark.parametrize("mode", ["synthesis", "refine"])
def test_mala_training_tracks_acceptance_and_runs_mirrored(mode):
    weights = tiny_model(mode=mode, bank_size=64).get_weights()
    single, logs = _train_two_steps(tf.distribute.get_strategy(), weights, mode)
    mirrored, mirrored_logs = _train_two_steps(mirrored_strategy(["/cpu:0", "/cpu:1"]), weights, mode)
    expected = {"acceptance_res"} | ({"acceptance_latent"} if mode == "refine" else set())
    assert expected <= set(logs) and all(0 <= logs[name] <= 1 for name in expected)
    for name in expected:
        assert mirrored_logs[name] == pytest.approx(logs[name], abs=1e-6)
    for a, b in zip(single.get_weights(), mirrored.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    # Unadjusted training logs no acceptance.
    assert "acceptance_res" not in [metric.name for metric in tiny_model(mode=mode).metrics]


def test_config_files_take_metropolis():
    from hat_ebm_tf.config import CONFIG_DIR, parse_config
    from hat_ebm_tf.errors import ConfigError

    values = yaml.safe_load((CONFIG_DIR / "digits.yaml").read_text())
    values["sampler"]["metropolis"] = True
    values["evaluation"]["sampler"] = {"metropolis": False}
    config = parse_config(values)
    assert config.sampler.metropolis and not config.evaluation.sampler.metropolis
    values["sampler"]["metropolis"] = "yes"
    with pytest.raises(ConfigError, match="metropolis"):
        parse_config(values)
