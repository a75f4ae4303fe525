# In-graph Langevin sampler of Hat EBM (Hill et al., NeurIPS 2022), written to
# reproduce the reference implementation's update rule
# (github.com/point0bar1/hat-ebm) as docs/reference.md states it. Independent code.
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
The update's pieces are ``hat_ebm_tf.langevin_steps``'s; under
``LangevinConfig.metropolis`` the chain is ``hat_ebm_tf.mala``'s instead.
"""

import functools

import tensorflow as tf

from hat_ebm_tf.langevin_steps import (
    LangevinResult,
    chain_tensors,
    energy_and_gradient,
    generate_on_tape,
    latent_drift,
    mean_drift_step,
    residual_drift,
    update_constants,
)
from hat_ebm_tf.mala import metropolis_langevin
from hat_ebm_tf.rng import SALT_INIT_LATENT, SALT_INIT_RESIDUAL, SALT_NOISE_LATENT, SALT_NOISE_RESIDUAL, row_normal


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
