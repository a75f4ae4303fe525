# Losses of Hat EBM training (Hill et al., NeurIPS 2022), as in the reference
# implementation (github.com/point0bar1/hat-ebm). Independent code.
"""Maximum-likelihood energy loss, its drift regularisation, and the cooperative generator loss."""

import tensorflow as tf


def maximum_likelihood_loss(energy_data, energy_samples, temperature):
    """ML loss of an EBM (paper Eq. 2): ``(mean H(data) − mean H(samples)) / T``.

    Its gradient is the Monte-Carlo estimate of the negative log-likelihood
    gradient: energy of data goes down, energy of model samples goes up.

    Args:
        energy_data: ``[B]`` or ``[B, 1]`` energies of (noised) data.
        energy_samples: ``[B']`` or ``[B', 1]`` energies of model samples.
        temperature: T > 0.

    Returns:
        ``(loss, energy_diff)`` float32 scalars; ``energy_diff`` is the
        unscaled ``mean H(data) − mean H(samples)``.
    """
    diff = tf.reduce_mean(tf.cast(energy_data, tf.float32)) - tf.reduce_mean(tf.cast(energy_samples, tf.float32))
    return diff / temperature, diff


def generator_regression_loss(generated, targets, factor):
    """Cooperative generator loss: ``factor · mean (G(z) − target)²``.

    Args:
        generated: ``[B, H, W, C]`` ``G(z_bank)``.
        targets: ``[B, H, W, C]`` refined images from the persistent bank.
        factor: loss weight (reference: 1000).

    Returns:
        float32 scalar.
    """
    err = tf.cast(generated, tf.float32) - tf.cast(targets, tf.float32)
    return factor * tf.reduce_mean(tf.square(err))


def drift_penalty(drift, target, weight):
    """Drift regularisation: ``weight · (drift − target)²``, added to the energy loss (in its units, before ÷ T).

    ``drift`` is the mean length of the residual drift step that the sampler
    would take at the samples, ``(ε²/2)·‖∂H/∂x‖ / T``, before its clip. Maximum
    likelihood alone can steepen the energy until that step sits at the clip,
    where the sampler no longer depends on the energy's scale and the energy
    gap then runs away; or flatten it around the samples until the chains stop
    moving and the energy only classifies data against samples. Holding the
    drift at ``target``, below the clip, fixes the energy's scale in the
    sampler's own units and rules out both. Not in the reference implementation.

    Args:
        drift: float32 scalar, the samples' mean unclipped drift step.
        target: the drift step to hold, in the units of ``max_residual_norm``.
        weight: the penalty's weight (0: none).

    Returns:
        float32 scalar.
    """
    return weight * tf.square(drift - target)
