# The Langevin update of Hat EBM (Hill et al., NeurIPS 2022), written to
# reproduce the reference implementation's update rule
# (github.com/point0bar1/hat-ebm) as docs/reference.md states it. Independent code.
"""The pieces of one Langevin update that the unadjusted sampler and MALA share.

``hat_ebm_tf.sampler`` (unadjusted Langevin) and ``hat_ebm_tf.mala``
(Metropolis-adjusted) build their chains from these: the drifts of the latent
and the residual (with the residual's clipping), the energy and its image
gradient, the step constants of a ``LangevinConfig``, and the result of a
chain, ``LangevinResult``. One set of pieces, so that a chain adjusted or not
makes the same update from the same draws.
"""

from typing import NamedTuple

import tensorflow as tf


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
