# Losses of Hat EBM training (Hill et al., NeurIPS 2022), as in the reference
# implementation (github.com/point0bar1/hat-ebm). Independent code.
"""Maximum-likelihood energy loss and the cooperative generator loss."""

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
