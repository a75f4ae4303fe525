# In-graph Langevin sampler of Hat EBM (Hill et al., NeurIPS 2022), written to
# reproduce the reference implementation's update rule
# (github.com/point0bar1/hat-ebm) as stated in REFERENCE.md. Independent code.
"""Langevin dynamics on the latent ``z`` and residual ``y`` of ``x = G(z) + y``.

One step, with temperature ``T`` (paper Sec. 3, Eq. 3 and 5):

1. Latent step (joint form only): ``z ← z − (ε_z²/2)·∂/∂z Σ_b H(G(z)+y)/T``
   ``+ ε_z·N(0, I)``.
2. Residual step, with the updated ``z``: ``y ← y − (ε²/2)·g + ε·N(0, I)``,
   ``g = ∂/∂y [Σ_b H(G(z)+y)/T + τ·Σ y²]``, each sample's ``g`` optionally
   clipped to norm ``max_residual_norm / (ε²/2)``, so that no drift step is
   longer than ``max_residual_norm``.

The loop is a ``tf.while_loop``: no gradient flows through it, so memory does
not grow with the number of steps. Noise is drawn per row from a stateless
counter-based generator (``hat_ebm_tf.rng``) keyed on that row's seed, so a
row's chain depends on its own seed only, whatever the batch it is drawn in.
"""

import functools
from typing import NamedTuple

import tensorflow as tf

from hat_ebm_tf.rng import (
    SALT_INIT_LATENT,
    SALT_INIT_RESIDUAL,
    SALT_NOISE_LATENT,
    SALT_NOISE_RESIDUAL,
    STREAM_STRIDE,
    stateless_row_normal,
    stateless_row_uniform,
)

# The settings live in a TensorFlow-free module (the command line builds its flags from them); public here too.
from hat_ebm_tf.sampler_config import JOINT_LATENT_STEP_SIZE, LangevinConfig  # noqa: F401


class LangevinResult(NamedTuple):
    """Final chain state.

    Attributes:
        latents: ``[B, *latent_shape]`` final z.
        residuals: ``[B, H, W, C]`` final y.
        images: ``[B, H, W, C]`` ``G(z) + y``.
        grad_norm_latent: scalar, mean over steps of ``(ε_z²/2)·mean_b ||g_b||``
            (0 when latents are fixed).
        grad_norm_res: scalar, the same for the residual gradient.
        acceptance_latent: ``[B]`` per chain, the fraction of latent steps
            whose proposal was accepted, ``1 − rejections / num_steps`` in
            [0, 1]: below 1 only under ``metropolis``.
        acceptance_res: ``[B]`` the same for the residual steps.
    """

    latents: tf.Tensor
    residuals: tf.Tensor
    images: tf.Tensor
    grad_norm_latent: tf.Tensor
    grad_norm_res: tf.Tensor
    acceptance_latent: tf.Tensor
    acceptance_res: tf.Tensor


def row_seeds(seed, num_rows, offset=0):
    """Per-row seeds ``[num_rows, 2]`` int64: row ``i`` gets ``(seed, offset + i)``.

    Rows keep their seed whatever batch they are drawn in, so chain ``i`` of a
    ``sample(n, seed)`` call is the same for any batch split.
    """
    seed = tf.cast(seed, tf.int64)
    rows = tf.range(num_rows, dtype=tf.int64) + tf.cast(offset, tf.int64)
    return tf.stack([tf.fill([num_rows], seed), rows], axis=1)


def row_normal(seeds, shape, salt, step=0):
    """Standard normal noise ``[B, *shape]`` float32, row ``b`` keyed on ``seeds[b]``.

    Args:
        seeds: ``[B, 2]`` integer seeds, one per row.
        shape: static per-row shape.
        salt: integer separating independent streams of one row.
        step: integer (tensor) separating Langevin steps.
    """
    return stateless_row_normal(seeds, _stream(salt, step), shape)


def row_uniform(seeds, salt, step=0):
    """One uniform ``[B]`` float32 in (0, 1) per row, row ``b`` keyed on ``seeds[b]`` (arguments as ``row_normal``)."""
    return stateless_row_uniform(seeds, _stream(salt, step), 1)[:, 0]


def _stream(salt, step):
    """The stream id of a (salt, step) pair (``hat_ebm_tf.rng`` registers the salts, all < ``STREAM_STRIDE``)."""
    return tf.cast(step, tf.int64) * STREAM_STRIDE + salt


def initial_state(seeds, latent_shape, image_shape, config):
    """Initial ``(z, y)``: ``z ~ init_scale_latent·N(0, I)``, ``y ~ init_scale_residual·N(0, I)``.

    Args:
        seeds: ``[B, 2]`` per-row seeds.
        latent_shape: per-row latent shape, e.g. ``(128,)``.
        image_shape: per-row image shape ``(H, W, C)``.
        config: ``LangevinConfig``.

    Returns:
        ``(latents [B, *latent_shape], residuals [B, H, W, C])`` float32.
    """
    latents = config.init_scale_latent * row_normal(seeds, latent_shape, SALT_INIT_LATENT)
    residuals = config.init_scale_residual * row_normal(seeds, image_shape, SALT_INIT_RESIDUAL)
    return latents, residuals


def row_sum(x):
    """``[B, ...]`` → ``[B]``: the sum over all but the first axis."""
    return tf.reduce_sum(x, axis=tf.range(1, tf.rank(x)))


def mean_drift_step(half_eps_sq, g):
    """``(ε²/2)·mean_b ||g_b||``: the mean length of the drift step of gradients ``g`` ``[B, ...]`` (a scalar)."""
    return half_eps_sq * tf.reduce_mean(tf.sqrt(row_sum(tf.square(g))))


def generate_on_tape(generator_fn, z):
    """``(tape, G(z))``, the tape holding G's forward pass for a later latent gradient; ``G(z)`` as float32."""
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(z)
        base = tf.cast(generator_fn(z), tf.float32)
    return tape, base


def energy_and_gradient(energy_fn, images):
    """``(H(x) [B], ∂/∂x Σ_b H(x_b) [B, H, W, C])`` at ``x = images``, both float32.

    The gradient is of the unscaled energy; callers divide by T in float32
    afterwards: with the reference's T = 1e-8, scaling inside a float16
    network's backward pass would overflow.
    """
    with tf.GradientTape() as tape:
        tape.watch(images)
        energy = tf.reshape(tf.cast(energy_fn(images), tf.float32), [-1])
        total = tf.reduce_sum(energy)
    return energy, tf.cast(tape.gradient(total, images), tf.float32)


def chain_tensors(latents, residuals, seeds):
    """The chain's inputs as tensors: float32 ``latents`` and ``residuals``, and the row ``seeds``."""
    return (
        tf.convert_to_tensor(latents, tf.float32),
        tf.convert_to_tensor(residuals, tf.float32),
        tf.convert_to_tensor(seeds),
    )


def update_constants(config):
    """``(T, ε²/2, ε_z²/2, clip)`` of a Langevin update under ``config``.

    ``clip`` bounds the norm of each residual gradient so that the drift step
    ``(ε²/2)·g`` is at most ``max_residual_norm``; None without a bound.
    """
    half_eps_sq = config.step_size**2 / 2.0
    clip = None if config.max_residual_norm is None else config.max_residual_norm / half_eps_sq
    return tf.constant(config.temperature, tf.float32), half_eps_sq, config.latent_step_size**2 / 2.0, clip


def latent_drift(tape, base, z, gx, temperature):
    """The latent's drift ``∂/∂z ΣH(G(z) + y) / T = J_G(z)ᵀ ∂ΣH/∂x / T``, as float32 ``[B, *latent_shape]``.

    The backward pass through G reuses the forward pass on ``tape``
    (``generate_on_tape``) instead of running G again.

    Args:
        tape: the tape that recorded ``base = G(z)``.
        base: ``[B, H, W, C]`` float32 ``G(z)``.
        z: ``[B, *latent_shape]`` float32 latents.
        gx: ``[B, H, W, C]`` float32 ``∂ΣH/∂x`` of the unscaled energy at ``x = G(z) + y``.
        temperature: T > 0.
    """
    return tf.cast(tape.gradient(base, z, output_gradients=gx), tf.float32) / temperature


def residual_drift(gx, y, temperature, tau, clip):
    """The residual's drift ``∂/∂y [ΣH(x)/T + τ·Σy²]``, each row clipped to norm ``clip``.

    Args:
        gx: ``[B, H, W, C]`` float32 ``∂ΣH/∂x`` of the unscaled energy at ``x = G(z) + y``.
        y: ``[B, H, W, C]`` float32 residuals.
        temperature: T > 0.
        tau: τ ≥ 0, the Gaussian residual prior's strength.
        clip: per-row norm bound (``update_constants``), or None.

    Returns:
        ``[B, H, W, C]`` float32.
    """
    g = gx / temperature
    if tau > 0:
        g += 2.0 * tau * y  # ∂/∂y τ·Σy², the Gaussian residual prior
    if clip is not None:
        g = tf.clip_by_norm(g, clip, axes=[1, 2, 3])
    return g


def langevin(energy_fn, generator_fn, latents, residuals, seeds, config, first_step=0):
    """Run ``config.num_steps`` Langevin steps of the Hat EBM (see module doc).

    Args:
        energy_fn: ``[B, H, W, C]`` images → ``[B]`` or ``[B, 1]`` energies H.
        generator_fn: ``[B, *latent_shape]`` → ``[B, H, W, C]`` images G(z).
            Evaluated once per chain when ``config.update_latents`` is False;
            in the joint form, once per step plus once, with one backward
            pass per step.
        latents: ``[B, *latent_shape]`` float32 initial z.
        residuals: ``[B, H, W, C]`` float32 initial y.
        seeds: ``[B, 2]`` integer per-row seeds of the noise.
        config: ``LangevinConfig``.
        first_step: integer (tensor) index of the first step: a chain run as
            pieces of ``num_steps`` steps, each started at the step where the
            last ended, draws the noise of one unbroken chain.

    Returns:
        ``LangevinResult`` (chain state is float32 throughout).
    """
    if config.metropolis:
        # The MALA module builds on this one's primitives, hence the late import.
        from hat_ebm_tf.mala import metropolis_langevin

        return metropolis_langevin(energy_fn, generator_fn, latents, residuals, seeds, config, first_step)
    latents, residuals, seeds = chain_tensors(latents, residuals, seeds)
    first_step = tf.cast(first_step, tf.int32)
    temperature, half_eps_sq, half_eps_z_sq, clip = update_constants(config)
    num_steps = config.num_steps

    generate = functools.partial(generate_on_tape, generator_fn)

    def latent_step(step, tape, z, base, y):
        """Latent step ``step`` at ``(z, y)``, given ``base = G(z)`` recorded on ``tape``."""
        g = latent_drift(tape, base, z, energy_and_gradient(energy_fn, base + y)[1], temperature)
        z = z - half_eps_z_sq * g
        if config.noise:
            z = z + config.latent_step_size * row_normal(seeds, z.shape[1:], SALT_NOISE_LATENT, step)
        return z, mean_drift_step(half_eps_z_sq, g)

    def residual_step(step, base, y):
        g = residual_drift(energy_and_gradient(energy_fn, base + y)[1], y, temperature, config.tau, clip)
        y = y - half_eps_sq * g
        if config.noise:
            y = y + config.step_size * row_normal(seeds, y.shape[1:], SALT_NOISE_RESIDUAL, step)
        return y, mean_drift_step(half_eps_sq, g)

    def loop(body, state, iterations):
        return tf.while_loop(
            lambda step, *_: step < iterations, body, (tf.constant(0, tf.int32), *state), maximum_iterations=iterations
        )[1:]

    zero = tf.constant(0.0, tf.float32)
    if not config.update_latents:
        # Synthesis: G(z) is evaluated once, here, and never inside the loop.
        _, base = generate(latents)

        def synthesis_body(step, y, norm_y):
            y, dy = residual_step(first_step + step, base, y)
            return step + 1, y, norm_y + dy

        residuals, norm_y = loop(synthesis_body, (residuals, zero), num_steps)
        norm_z = zero
    elif num_steps == 0:
        _, base = generate(latents)
        norm_z = norm_y = zero
    else:
        # Joint form, step k: latent step at (z_k, y_k), then residual step at
        # (z_{k+1}, y_k). Rotated so that each G(z) forward pass serves both the
        # residual step of one step and the latent step of the next: iteration
        # k runs G(z_{k+1}), residual step k, latent step k + 1.
        tape, base = generate(latents)
        latents, norm_z = latent_step(first_step, tape, latents, base, residuals)

        def joint_body(step, z, y, norm_z, norm_y):
            tape, base = generate(z)
            y, dy = residual_step(first_step + step, base, y)
            z, dz = latent_step(first_step + step + 1, tape, z, base, y)
            return step + 1, z, y, norm_z + dz, norm_y + dy

        latents, residuals, norm_z, norm_y = loop(joint_body, (latents, residuals, norm_z, zero), num_steps - 1)
        _, base = generate(latents)
        residuals, dy = residual_step(first_step + num_steps - 1, base, residuals)
        norm_y += dy
    steps = float(max(config.num_steps, 1))
    accepted = tf.ones(tf.shape(residuals)[:1], tf.float32)  # unadjusted: every update is taken
    return LangevinResult(latents, residuals, base + residuals, norm_z / steps, norm_y / steps, accepted, accepted)
