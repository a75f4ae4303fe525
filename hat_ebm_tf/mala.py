"""Metropolis-adjusted Langevin (MALA) on the latent ``z`` and residual ``y`` of ``x = G(z) + y``.

``hat_ebm_tf.sampler.langevin`` runs this when ``LangevinConfig.metropolis``
is set. Each Langevin update of the sampler (``hat_ebm_tf.langevin_steps``:
same drift, same clipping, same noise draws) becomes a Metropolis–Hastings proposal that each chain accepts or
rejects on its own (Roberts & Tweedie 1996; Besag 1994). With the energy
``U(z, y) = Σ H(G(z) + y)/T + τ·Σ y²`` of one chain, a proposal from ``v`` is

    ``v' = v − (ε²/2)·d(v) + ε·ξ``,  ``ξ ~ N(0, I)``,

where ``d`` is the drift: ``∂U/∂y`` clipped to norm ``max_residual_norm/(ε²/2)``
for the residual, ``∂U/∂z`` for the latent. The proposal density is
``q(v' | v) = N(v'; v − (ε²/2)·d(v), ε²·I)``, and ``v'`` is accepted with
probability ``min(1, exp(−U(v') + U(v)) · q(v | v') / q(v' | v))``. The reverse
density uses the drift at the proposed state, clipping included, so the clipped
sampler is exact too. With ``a = (ε/2)·(d(v) + d(v'))`` the log ratio of the
proposal densities is exactly ``−½·Σ a·(a − 2ξ)``, computed without
subtracting nearby states.

The joint form (refine/retrofit) makes two Metropolis-within-Gibbs moves per
step, in the order of the unadjusted sampler: a latent proposal given ``y``,
accepted or rejected, then a residual proposal given the new ``z``, with its
own accept step. Each move leaves ``p(z, y) ∝ exp(−U)`` invariant.

Energies and image gradients at the current state are carried in the loop,
so each proposal costs one energy forward and backward pass, as an unadjusted
step does (the joint form also runs G once more per step). Accept draws are
per-row counter-based uniforms (``hat_ebm_tf.rng``), so a row's chain depends on
its own seed only.
"""

import functools

import tensorflow as tf

# The same update pieces and noise streams as the unadjusted sampler: one chain, adjusted or not, from one seed.
from hat_ebm_tf import langevin_steps
from hat_ebm_tf.rng import (
    SALT_ACCEPT_LATENT,
    SALT_ACCEPT_RESIDUAL,
    SALT_NOISE_LATENT,
    SALT_NOISE_RESIDUAL,
    row_normal,
    row_uniform,
)


def _select(accept, new, old):
    """Row ``b`` of ``new`` where ``accept[b]``, else of ``old``."""
    mask = tf.reshape(accept, tf.concat([tf.shape(accept), tf.ones([tf.rank(new) - 1], tf.int32)], 0))
    return tf.where(mask, new, old)


def _accept(uniform, delta_energy, drift, drift_new, noise, step_size):
    """The Metropolis–Hastings accept decisions ``[B]`` bool of one move (see module doc).

    Args:
        uniform: ``[B]`` uniforms in (0, 1) of the accept draw.
        delta_energy: ``[B]`` ``U(v') − U(v)``.
        drift, drift_new: ``[B, ...]`` drift ``d`` at the current and the
            proposed state.
        noise: ``[B, ...]`` the proposal's standard normal ``ξ``.
        step_size: ε.
    """
    a = (step_size / 2.0) * (drift + drift_new)
    log_ratio = -delta_energy - 0.5 * langevin_steps.row_sum(a * (a - 2.0 * noise))
    # A non-finite energy or drift makes the ratio NaN, and the comparison rejects it.
    return tf.math.log(uniform) < log_ratio


def metropolis_langevin(energy_fn, generator_fn, latents, residuals, seeds, config, first_step=0):
    """Run ``config.num_steps`` MALA steps; arguments and result as ``hat_ebm_tf.sampler.langevin``.

    ``grad_norm_latent`` / ``grad_norm_res`` are the mean proposal drift step
    ``(ε²/2)·mean_b ||d_b||`` at the current states; ``acceptance_latent`` /
    ``acceptance_res`` are each chain's accepted fraction of proposals.
    """
    latents, residuals, seeds = langevin_steps.chain_tensors(latents, residuals, seeds)
    first_step = tf.cast(first_step, tf.int64)
    temperature, half_eps_sq, half_eps_z_sq, clip = langevin_steps.update_constants(config)

    generate = functools.partial(langevin_steps.generate_on_tape, generator_fn)

    def residual_move(step, base, y, energy, gx):
        """One residual proposal at ``(base = G(z), y)`` and its accept step."""
        drift = langevin_steps.residual_drift(gx, y, temperature, config.tau, clip)
        noise = row_normal(seeds, y.shape[1:], SALT_NOISE_RESIDUAL, step)
        y_new = y - half_eps_sq * drift + config.step_size * noise
        energy_new, gx_new = langevin_steps.energy_and_gradient(energy_fn, base + y_new)
        delta = (energy_new - energy) / temperature
        if config.tau > 0:
            delta += config.tau * (langevin_steps.row_sum(tf.square(y_new)) - langevin_steps.row_sum(tf.square(y)))
        uniform = row_uniform(seeds, SALT_ACCEPT_RESIDUAL, step)
        drift_new = langevin_steps.residual_drift(gx_new, y_new, temperature, config.tau, clip)
        accept = _accept(uniform, delta, drift, drift_new, noise, config.step_size)
        moved = [_select(accept, new, old) for new, old in ((y_new, y), (energy_new, energy), (gx_new, gx))]
        return (*moved, tf.cast(accept, tf.float32), langevin_steps.mean_drift_step(half_eps_sq, drift))

    def latent_move(step, z, y, energy, gx):
        """One latent proposal at ``(z, y)`` and its accept step; also returns ``G`` at the chosen ``z``."""
        tape, base = generate(z)
        drift = langevin_steps.latent_drift(tape, base, z, gx, temperature)  # ∂U/∂z from the carried image gradient
        noise = row_normal(seeds, z.shape[1:], SALT_NOISE_LATENT, step)
        z_new = z - half_eps_z_sq * drift + config.latent_step_size * noise
        tape, base_new = generate(z_new)
        energy_new, gx_new = langevin_steps.energy_and_gradient(energy_fn, base_new + y)
        drift_new = langevin_steps.latent_drift(tape, base_new, z_new, gx_new, temperature)
        delta = (energy_new - energy) / temperature
        uniform = row_uniform(seeds, SALT_ACCEPT_LATENT, step)
        accept = _accept(uniform, delta, drift, drift_new, noise, config.latent_step_size)
        pairs = ((z_new, z), (base_new, base), (energy_new, energy), (gx_new, gx))
        moved = [_select(accept, new, old) for new, old in pairs]
        return (*moved, tf.cast(accept, tf.float32), langevin_steps.mean_drift_step(half_eps_z_sq, drift))

    _, base = generate(latents)
    energy, gx = langevin_steps.energy_and_gradient(energy_fn, base + residuals)
    zero, rows = tf.constant(0.0, tf.float32), tf.zeros(tf.shape(residuals)[:1], tf.float32)

    def body(step, z, base, y, energy, gx, accepted_z, accepted_y, norm_z, norm_y):
        index = first_step + step
        if config.update_latents:
            z, base, energy, gx, acc_z, dz = latent_move(index, z, y, energy, gx)
        else:  # synthesis: G(z) was evaluated once, above, and z is never proposed (each "move" keeps it)
            acc_z, dz = 1.0, 0.0
        y, energy, gx, acc_y, dy = residual_move(index, base, y, energy, gx)
        accepted_z, accepted_y = accepted_z + acc_z, accepted_y + acc_y
        return step + 1, z, base, y, energy, gx, accepted_z, accepted_y, norm_z + dz, norm_y + dy

    latents, base, residuals, _, _, accepted_z, accepted_y, norm_z, norm_y = tf.while_loop(
        lambda step, *_: step < config.num_steps,
        body,
        (tf.constant(0, tf.int64), latents, base, residuals, energy, gx, rows, rows, zero, zero),
        maximum_iterations=config.num_steps,
    )[1:]
    steps = float(max(config.num_steps, 1))
    # 1 − rejections/steps: a chain of 0 steps refused nothing.
    acceptance_latent = 1.0 - (config.num_steps - accepted_z) / steps
    acceptance_res = 1.0 - (config.num_steps - accepted_y) / steps
    return langevin_steps.LangevinResult(
        latents, residuals, base + residuals, norm_z / steps, norm_y / steps, acceptance_latent, acceptance_res
    )
