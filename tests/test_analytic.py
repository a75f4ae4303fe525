"""The analytic targets of ``hat_ebm_tf.evaluation.analytic``: moments, density and energy (MALA is tested on them)."""

import numpy as np
import pytest
import tensorflow as tf

from hat_ebm_tf.evaluation.analytic import IMAGE_SHAPE, TWO_MODES, Mixture


def test_mixture_moments_and_density():
    grid = np.linspace(-6, 6, 20001)
    density = np.exp(TWO_MODES.log_density(grid))
    step = grid[1] - grid[0]
    assert density.sum() * step == pytest.approx(1.0, abs=1e-6)
    assert (grid * density).sum() * step == pytest.approx(TWO_MODES.mean, abs=1e-6)
    assert ((grid - TWO_MODES.mean) ** 2 * density).sum() * step == pytest.approx(TWO_MODES.variance, abs=1e-6)
    # H(y) = −Σ log p(y_i) + const: differences of energies are differences of log densities.
    y = grid[::1250][:16]
    energies = TWO_MODES.energy(tf.constant(np.stack([y, np.zeros(16)]).reshape(2, *IMAGE_SHAPE), tf.float32))
    difference = TWO_MODES.log_density(y).sum() - 16 * TWO_MODES.log_density(0.0)
    assert float(energies[1] - energies[0]) == pytest.approx(difference, rel=1e-5)
    with pytest.raises(ValueError, match="sum to 1"):
        Mixture(weights=(0.5, 0.6), means=(0.0, 1.0), scales=(1.0, 1.0))
