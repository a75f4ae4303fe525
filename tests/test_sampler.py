import numpy as np
import pytest
import tensorflow as tf

from hat_ebm_tf.rng import row_seeds
from hat_ebm_tf.sampler import initial_state, langevin
from hat_ebm_tf.sampler_config import LangevinConfig

SHAPE = (4, 4, 1)


def quadratic(sigma):
    """H(x) = ||x||² / (2σ²) per sample, and its gradient."""
    return lambda x: tf.reduce_sum(tf.square(x), axis=[1, 2, 3]) / (2 * sigma**2)


def zeros_generator(z):
    return tf.zeros([tf.shape(z)[0], *SHAPE])


def run(config, energy, generator, z, y, seed=0, offset=0):
    seeds = row_seeds(seed, len(z), offset)
    return tf.function(lambda z, y: langevin(energy, generator, z, y, seeds, config))(z, y)


def test_stationary_distribution_matches_gaussian():
    sigma, eps = 0.5, 0.05
    config = LangevinConfig(num_steps=800, step_size=eps, temperature=1.0)
    n = 1000
    out = run(config, quadratic(sigma), zeros_generator, np.zeros((n, 2), "float32"), np.zeros((n, *SHAPE), "float32"))
    samples = out.images.numpy().ravel()
    assert abs(samples.mean()) < 0.02
    # Euler–Maruyama's stationary variance is σ²/(1 − ε²/(4σ²)); both are within 5 %.
    assert samples.var() == pytest.approx(sigma**2, rel=0.05)


def test_noise_off_is_gradient_descent_on_latents_then_residuals(rng):
    sigma, eps, eps_z, temp, tau, steps = 0.7, 0.1, 0.2, 0.5, 0.3, 4
    a = rng.standard_normal((3, 16)).astype("float32") * 0.3  # linear generator G(z) = z @ a
    config = LangevinConfig(
        num_steps=steps,
        step_size=eps,
        latent_step_size=eps_z,
        temperature=temp,
        update_latents=True,
        noise=False,
        tau=tau,
    )
    z0 = rng.standard_normal((5, 3)).astype("float32")
    y0 = rng.standard_normal((5, *SHAPE)).astype("float32") * 0.1
    out = run(config, quadratic(sigma), lambda z: tf.reshape(z @ a, [-1, *SHAPE]), z0, y0)

    z, y = z0.astype("float64"), y0.reshape(5, 16).astype("float64")
    norms_z, norms_y = [], []
    for _ in range(steps):
        gz = ((z @ a + y) / sigma**2 / temp) @ a.T
        z = z - eps_z**2 / 2 * gz
        gy = (z @ a + y) / sigma**2 / temp + 2 * tau * y
        y = y - eps**2 / 2 * gy
        norms_z.append(eps_z**2 / 2 * np.linalg.norm(gz, axis=1).mean())
        norms_y.append(eps**2 / 2 * np.linalg.norm(gy, axis=1).mean())
    np.testing.assert_allclose(out.latents, z, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out.residuals.numpy().reshape(5, 16), y, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out.images.numpy().reshape(5, 16), z @ a + y, rtol=1e-4, atol=1e-5)
    assert float(out.grad_norm_latent) == pytest.approx(np.mean(norms_z), rel=1e-4)
    assert float(out.grad_norm_res) == pytest.approx(np.mean(norms_y), rel=1e-4)


def test_clipping_bounds_each_samples_step(rng):
    config = LangevinConfig(num_steps=1, step_size=0.1, temperature=1e-6, noise=False, max_residual_norm=0.25)
    y0 = rng.standard_normal((6, *SHAPE)).astype("float32")
    y0[0] *= 1e-9  # a small gradient is not clipped
    out = run(config, quadratic(1.0), zeros_generator, np.zeros((6, 2), "float32"), y0)
    steps = np.linalg.norm((out.residuals.numpy() - y0).reshape(6, -1), axis=1)
    np.testing.assert_allclose(steps[1:], 0.25, rtol=1e-5)
    assert steps[0] == pytest.approx(0.1**2 / 2 * np.linalg.norm(y0[0]) / 1e-6, rel=1e-4)


def test_tau_adds_the_gaussian_prior_gradient(rng):
    eps, tau = 0.1, 3.0
    config = LangevinConfig(num_steps=1, step_size=eps, temperature=1.0, noise=False, tau=tau)
    y0 = rng.standard_normal((2, *SHAPE)).astype("float32")
    flat_energy = lambda x: 0.0 * tf.reduce_sum(x, axis=[1, 2, 3])  # noqa: E731
    out = run(config, flat_energy, zeros_generator, np.zeros((2, 2), "float32"), y0)
    np.testing.assert_allclose(out.residuals, y0 * (1 - eps**2 * tau), rtol=1e-5)


@pytest.mark.parametrize(
    ("update_latents", "num_steps", "expected_calls"),
    [(False, 5, 1), (True, 5, 5 + 1), (True, 1, 2), (True, 0, 1), (False, 0, 1)],
)
def test_generator_evaluations_per_chain(update_latents, num_steps, expected_calls):
    calls = tf.Variable(0)

    def counting_generator(z):
        calls.assign_add(1)
        return tf.reshape(tf.tile(z, [1, 8]), [-1, *SHAPE])

    config = LangevinConfig(num_steps=num_steps, step_size=0.1, latent_step_size=0.1, update_latents=update_latents)
    out = run(config, quadratic(1.0), counting_generator, np.ones((3, 2), "float32"), np.zeros((3, *SHAPE), "float32"))
    assert int(calls.numpy()) == expected_calls
    np.testing.assert_allclose(out.images, counting_generator(out.latents) + out.residuals, rtol=1e-6)


def test_same_seed_same_chain_and_rows_independent_of_batch():
    config = LangevinConfig(num_steps=5, step_size=0.1, temperature=1.0, init_scale_residual=0.5)

    def chains(seed, n, offset=0):
        seeds = row_seeds(seed, n, offset)
        z, y = initial_state(seeds, (2,), SHAPE, config)
        return tf.function(lambda z, y: langevin(quadratic(1.0), zeros_generator, z, y, seeds, config))(z, y)

    a, b, c = chains(3, 6), chains(3, 6), chains(4, 6)
    np.testing.assert_array_equal(a.images, b.images)
    assert not np.allclose(a.images, c.images)
    np.testing.assert_array_equal(chains(3, 3, offset=2).images, a.images[2:5])


def test_memory_state_is_loop_carried_not_stacked():
    # The loop carries only the current state: the graph has no TensorList
    # accumulators (which a gradient through the loop would add).
    config = LangevinConfig(num_steps=50, step_size=0.1, temperature=1.0)
    fn = tf.function(lambda z, y: langevin(quadratic(1.0), zeros_generator, z, y, row_seeds(0, 2), config))
    graph = fn.get_concrete_function(tf.zeros((2, 2)), tf.zeros((2, *SHAPE))).graph.as_graph_def()
    ops = {node.op for f in graph.library.function for node in f.node_def} | {node.op for node in graph.node}
    assert "While" in ops or "StatelessWhile" in ops
    assert not {op for op in ops if op.startswith("TensorList")}
