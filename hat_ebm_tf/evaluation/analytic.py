"""Samplers on energies with a known law: is a Langevin chain exact at a given step size?

A target is a one-dimensional law applied to every pixel of ``y`` independently
(``H(y) = Σ_i −log p(y_i)``, ``G(z) = 0``, T = 1), so the chain's pixels are
draws of ``p`` whose moments are known in closed form. Unadjusted Langevin
samples a law that is biased by O(ε²); MALA's accept step removes the bias at
any step size (``hat_ebm_tf.mala``).

``python -m hat_ebm_tf.evaluation.analytic OUT.png`` draws the figure of the
docs/sampling.md: histograms of unadjusted Langevin and MALA against the target density.
"""

import argparse
import dataclasses
import math

import numpy as np
import tensorflow as tf

from hat_ebm_tf.rng import row_seeds
from hat_ebm_tf.sampler import langevin
from hat_ebm_tf.sampler_config import LangevinConfig

IMAGE_SHAPE = (4, 4, 1)


@dataclasses.dataclass(frozen=True)
class Mixture:
    """A mixture of one-dimensional Gaussians ``Σ_k w_k·N(m_k, s_k²)`` (one component: a Gaussian).

    Attributes:
        weights: mixture weights ``w_k``, positive, summing to 1.
        means: component means ``m_k``.
        scales: component standard deviations ``s_k`` > 0.
    """

    weights: tuple[float, ...]
    means: tuple[float, ...]
    scales: tuple[float, ...]

    def __post_init__(self):
        if not len(self.weights) == len(self.means) == len(self.scales) > 0:
            raise ValueError("Mixture: weights, means and scales need the same positive length")
        if min(self.weights) <= 0 or not math.isclose(sum(self.weights), 1.0) or min(self.scales) <= 0:
            raise ValueError("Mixture: weights must be positive and sum to 1, scales positive")

    @property
    def mean(self):
        return sum(w * m for w, m in zip(self.weights, self.means, strict=True))

    @property
    def variance(self):
        second = sum(w * (s * s + m * m) for w, m, s in zip(self.weights, self.means, self.scales, strict=True))
        return second - self.mean**2

    def log_density(self, x):
        """``log p(x)`` of float64 ``x`` (numpy, any shape)."""
        x = np.asarray(x, np.float64)[..., None]
        w, m, s = (np.asarray(v, np.float64) for v in (self.weights, self.means, self.scales))
        terms = np.log(w) - 0.5 * ((x - m) / s) ** 2 - np.log(s * math.sqrt(2 * math.pi))
        top = terms.max(axis=-1, keepdims=True)
        return (top + np.log(np.exp(terms - top).sum(axis=-1, keepdims=True)))[..., 0]

    def energy(self, images):
        """``H(y) = Σ_i −log p(y_i)`` up to a constant: ``[B, H, W, C]`` → ``[B]`` float32."""
        x = images[..., None]
        terms = [
            math.log(w) - math.log(s) - 0.5 * tf.square((x - m) / s)
            for w, m, s in zip(self.weights, self.means, self.scales, strict=True)
        ]
        return -tf.reduce_sum(tf.reduce_logsumexp(tf.concat(terms, axis=-1), axis=-1), axis=[1, 2, 3])


GAUSSIAN = Mixture(weights=(1.0,), means=(0.0,), scales=(0.5,))
# Two modes 3.5 widths apart with unequal weights and widths: a skewed, bimodal law.
TWO_MODES = Mixture(weights=(0.35, 0.65), means=(-0.7, 0.7), scales=(0.3, 0.4))


def draw(target, config, num_chains, seed=0):
    """The final pixels of ``num_chains`` chains of ``config`` on ``target``, started at ``y ~ N(0, 1)``.

    Args:
        target: ``Mixture``.
        config: ``LangevinConfig`` (synthesis form; its temperature should be 1).
        num_chains: number of chains.
        seed: integer seed.

    Returns:
        ``(pixels, acceptance)``: float64 ``[num_chains·16]`` pixel draws and
        the chains' mean acceptance rate.
    """
    seeds = row_seeds(seed, num_chains)
    start = tf.random.stateless_normal([num_chains, *IMAGE_SHAPE], seed=[seed, 1])

    @tf.function
    def run():
        zeros = tf.zeros([num_chains, 1])
        return langevin(target.energy, lambda z: tf.zeros([num_chains, *IMAGE_SHAPE]), zeros, start, seeds, config)

    result = run()
    return result.images.numpy().astype(np.float64).ravel(), float(tf.reduce_mean(result.acceptance_res))


def save_figure(path, cases, num_chains=1000, seed=0):
    """Histograms of unadjusted Langevin and MALA beside each target's density, one panel per case.

    Args:
        path: output PNG.
        cases: ``[(title, Mixture, LangevinConfig), ...]``; each config is run
            with ``metropolis`` off and on.
        num_chains: chains per histogram.
        seed: integer seed.
    """
    # matplotlib (heavy): loaded only for the figure, which the tests of the draws do not need.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # after its backend is set, and late for the same reason

    fig, axes = plt.subplots(1, len(cases), figsize=(4.6 * len(cases), 3.4), squeeze=False)
    for ax, (title, target, config) in zip(axes[0], cases, strict=True):
        grid = np.linspace(target.mean - 4 * target.variance**0.5, target.mean + 4 * target.variance**0.5, 400)
        ax.plot(grid, np.exp(target.log_density(grid)), "k", lw=2, label=f"target (var {target.variance:.3f})")
        for metropolis, colour in ((False, "tab:red"), (True, "tab:blue")):
            pixels, acceptance = draw(target, dataclasses.replace(config, metropolis=metropolis), num_chains, seed)
            name = f"MALA, accept {acceptance:.2f}" if metropolis else "unadjusted"
            ax.hist(
                pixels,
                bins=80,
                range=(grid[0], grid[-1]),
                density=True,
                histtype="step",
                color=colour,
                lw=1.5,
                label=f"{name} (var {pixels.var():.3f})",
            )
        clip = "" if config.max_residual_norm is None else f", clip {config.max_residual_norm}"
        ax.set_title(f"{title}: ε = {config.step_size}, {config.num_steps} steps{clip}", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


# The cases of the test and docs/sampling.md: step sizes at which unadjusted Langevin is visibly biased.
# name → (title, target, sampler); the clip of "gaussian_clipped" binds in the bulk of the target
# (the unclipped drift step at ||y|| = 2 is 1.44), so its proposal densities must include the clipping.
CASES = {
    "gaussian": ("Gaussian σ = 0.5", GAUSSIAN, LangevinConfig(num_steps=400, step_size=0.6, temperature=1.0)),
    "gaussian_clipped": (
        "Gaussian, clipped drift",
        GAUSSIAN,
        LangevinConfig(num_steps=400, step_size=0.6, temperature=1.0, max_residual_norm=1.0),
    ),
    "two_modes": (
        "two-component mixture",
        TWO_MODES,
        LangevinConfig(num_steps=800, step_size=0.45, temperature=1.0),
    ),
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="output PNG")
    save_figure(parser.parse_args(argv).out, list(CASES.values()))


if __name__ == "__main__":
    main()
