"""Long-run chains of a trained Hat EBM: do samples stay on the data manifold far past the training length?

Short-run EBMs are trained with chains of a few dozen steps; run longer, their
chains may drift into saturated or meaningless images even when the short-run
samples look right (Nijkamp, Hill et al., "On the anatomy of MCMC-based
maximum likelihood learning of energy-based models", AAAI 2020). ``long_run``
runs ``chains`` fresh chains for ``steps`` steps and records, every ``every``
steps, each chain's energy, its share of saturated pixels, and under MALA its
acceptance rate; images are kept only for a few chains at log-spaced steps.

The chain runs in pieces of ``every`` steps, each one ``tf.while_loop`` in the
graph, continuing the step count (``langevin(first_step=...)``), so the result
is the chain of one ``num_steps = steps`` call and memory does not grow with
``steps``. ``write_long_run`` writes the figures and the JSON.
"""

import dataclasses
import json

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf

from hat_ebm_tf.data import model_range_to_uint8, read_source
from hat_ebm_tf.errors import ConfigError
from hat_ebm_tf.rng import row_seeds
from hat_ebm_tf.run_dir import RunDir
from hat_ebm_tf.sampler import initial_state, langevin

# Quantiles of the bands drawn for the chains' and the data's energies.
BAND = (0.1, 0.9)


@dataclasses.dataclass
class LongRun:
    """What a long run recorded; ``R`` records at ``steps`` ``[R]`` (0, every, 2·every, ..., total).

    Attributes:
        config: the ``LangevinConfig`` of the chains (its ``num_steps`` is the
            piece length ``every``).
        steps: ``[R]`` int, the step of each record.
        energies: ``[R, chains]`` float, ``H(x)`` of every chain.
        saturation: ``[R, chains]`` float in [0, 1], each chain's share of
            pixels with ``|x| > 1``, outside the data range.
        acceptance_res: ``[R − 1, chains]`` each chain's accepted share of
            residual proposals in the piece that ends at ``steps[1:]``.
        acceptance_latent: the same for latent proposals.
        strip_steps: the steps at which images were kept.
        strips: uint8 ``[len(strip_steps), strip_chains, H, W, C]``.
        data_energies: ``H`` of real images, or None.
        marks: ``{label: step}`` drawn as vertical lines (e.g. multiples of the
            training chain length).
    """

    config: object
    steps: np.ndarray
    energies: np.ndarray
    saturation: np.ndarray
    acceptance_res: np.ndarray
    acceptance_latent: np.ndarray
    strip_steps: list
    strips: np.ndarray
    data_energies: np.ndarray | None = None
    marks: dict = dataclasses.field(default_factory=dict)


def strip_steps(steps, every, count, extra=()):
    """``count`` log-spaced record steps from ``every`` to ``steps``, with 0 and ``extra``, rounded to records."""
    spaced = np.geomspace(every, steps, max(count - 1, 1)) if steps >= every else []
    chosen = {0, steps, *(min(steps, every * round(s / every)) for s in (*spaced, *extra))}
    return sorted(chosen)


def long_run(
    model, config, *, steps, every, chains=64, seed=0, strip_chains=8, num_strips=8, marks=None, progress=None
):
    """Run ``chains`` fresh chains of ``model`` for ``steps`` steps of ``config``, recording every ``every`` steps.

    Args:
        model: a ``HatEBM``.
        config: ``LangevinConfig``; its ``num_steps`` is ignored.
        steps: chain length, > 0.
        every: record interval, > 0; the last piece is shorter when it does
            not divide ``steps``.
        chains: number of chains; chain ``i`` is seeded ``(seed, i)``, as in
            ``model.sample``.
        seed: integer seed.
        strip_chains: chains whose images are kept (the first ones).
        num_strips: number of log-spaced steps at which they are kept.
        marks: ``{label: step}`` to draw, and to keep images at.
        progress: called with the number of steps done after each piece.

    Returns:
        ``LongRun``.
    """
    for name, value in (("steps", steps), ("every", every), ("chains", chains)):
        if not isinstance(value, int) or value <= 0:
            raise ConfigError(f"long_run: {name}={value!r} must be a positive integer")
    marks = dict(marks or {})
    seeds = row_seeds(seed, chains)
    latents, residuals = initial_state(seeds, model.latent_shape, model.image_shape, config)
    keep = strip_steps(steps, every, num_strips, extra=[s for s in marks.values() if s <= steps])
    pieces = {}

    def piece(length):
        """The traced piece of ``length`` steps: ``(z, y, first_step)`` → ``(result, H(x) [B])``."""
        if length not in pieces:
            piece_config = dataclasses.replace(config, num_steps=length)

            @tf.function(reduce_retracing=True, autograph=False)  # as HatEBM's samplers
            def run(z, y, first_step):
                result = langevin(model.hat, model.generate, z, y, seeds, piece_config, first_step)
                return result, model.energy(result.images)

            pieces[length] = run
        return pieces[length]

    images = model.generate(latents) + residuals
    record_steps, energies, saturation, acc_res, acc_latent, strips = [0], [], [], [], [], []

    def record(images, energy):
        energies.append(energy.numpy())
        saturation.append(tf.reduce_mean(tf.cast(tf.abs(images) > 1.0, tf.float32), axis=[1, 2, 3]).numpy())
        if record_steps[-1] in keep:
            # A diverged chain's NaN pixels are drawn black; its energies (NaN) say that it diverged.
            strips.append(model_range_to_uint8(np.nan_to_num(images[:strip_chains].numpy(), nan=-1.0)))

    record(images, model.energy(images))
    done = 0
    while done < steps:
        length = min(every, steps - done)
        result, energy = piece(length)(latents, residuals, tf.constant(done, tf.int64))
        latents, residuals, done = result.latents, result.residuals, done + length
        record_steps.append(done)
        acc_res.append(result.acceptance_res.numpy())
        acc_latent.append(result.acceptance_latent.numpy())
        record(result.images, energy)
        if progress is not None:
            progress(done)
    return LongRun(
        config=dataclasses.replace(config, num_steps=every),
        steps=np.asarray(record_steps),
        energies=np.stack(energies),
        saturation=np.stack(saturation),
        acceptance_res=np.stack(acc_res),
        acceptance_latent=np.stack(acc_latent),
        strip_steps=[s for s in record_steps if s in keep],
        strips=np.stack(strips),
        marks=marks,
    )


def run_data_images(path, num):
    """Up to ``num`` images of the data a run trained on, for the real-data energy band.

    Args:
        path: a run directory (its ``config.yaml`` names the data), or a ``.keras`` file.
        num: how many images; 0 for none.

    Returns:
        ``[n, H, W, C]`` float32 in [-1, 1], n <= ``num``; None for a ``.keras``
        file, a run without a config (an imported one), or ``num`` 0.
    """
    source = RunDir.data_source(path) if num > 0 else None
    return None if source is None else read_source(source.train_and_held_out()[0], limit=num)


def _band(values, axis=None):
    low, high = np.quantile(values, BAND, axis=axis)
    return low, np.median(values, axis=axis), high


def summary(run):
    """The JSON-ready record of a ``LongRun`` (lists of floats; per-chain values under ``chains``)."""
    e_low, e_mid, e_high = _band(run.energies, axis=1)
    record = {
        "sampler": run.config.to_dict(),
        "steps": run.steps.tolist(),
        "energy": {"median": e_mid.tolist(), f"q{BAND[0]}": e_low.tolist(), f"q{BAND[1]}": e_high.tolist()},
        "saturation_mean": run.saturation.mean(axis=1).tolist(),
        "acceptance_res_mean": run.acceptance_res.mean(axis=1).tolist(),
        "acceptance_latent_mean": run.acceptance_latent.mean(axis=1).tolist(),
        "strip_steps": list(run.strip_steps),
        "marks": run.marks,
        "chains": {
            "energies": run.energies.tolist(),
            "acceptance_res": run.acceptance_res.tolist(),
            "acceptance_latent": run.acceptance_latent.tolist(),
        },
    }
    if run.data_energies is not None:
        d_low, d_mid, d_high = _band(run.data_energies)
        record["data_energy"] = {
            "num": len(run.data_energies),
            "median": float(d_mid),
            f"q{BAND[0]}": float(d_low),
            f"q{BAND[1]}": float(d_high),
        }
    return record


def _axes_over_steps(ax, run, ylabel):
    ax.set_xscale("symlog", linthresh=max(int(run.steps[1]), 1) if len(run.steps) > 1 else 1)
    for label, step in run.marks.items():
        if step <= run.steps[-1]:
            ax.axvline(step, color="grey", ls=":", lw=1)
            ax.text(step, 1.0, f" {label}", transform=ax.get_xaxis_transform(), fontsize=7, va="top", color="grey")
    ax.set_xlabel("Langevin step")
    ax.set_ylabel(ylabel)


def _draw_band(ax, x, values, colour, label):
    low, mid, high = _band(values, axis=1)
    ax.fill_between(x, low, high, color=colour, alpha=0.25, lw=0)
    ax.plot(x, mid, color=colour, label=label)


def save_energy_plot(run, path):
    """Energy (and saturated-pixel share) of the chains against the step, with the real data's energy band."""
    fig, (ax, ax_sat) = plt.subplots(1, 2, figsize=(10, 3.6))
    _draw_band(ax, run.steps, run.energies, "tab:blue", f"chains: median, {BAND[0]:.0%}–{BAND[1]:.0%}")
    if run.data_energies is not None:
        low, mid, high = _band(run.data_energies)
        ax.axhspan(low, high, color="tab:green", alpha=0.2, lw=0)
        ax.axhline(mid, color="tab:green", label=f"real data (n = {len(run.data_energies)})")
    _axes_over_steps(ax, run, "energy H(x)")
    ax.legend(fontsize=7)
    ax.set_title(f"energy, {run.energies.shape[1]} chains", fontsize=9)
    _draw_band(ax_sat, run.steps, run.saturation, "tab:red", "median, band")
    _axes_over_steps(ax_sat, run, "share of pixels with |x| > 1")
    ax_sat.set_title("saturation", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def save_acceptance_plot(run, path):
    """Each piece's acceptance rate (median and band over chains) against the step."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    x = run.steps[1:]
    _draw_band(ax, x, run.acceptance_res, "tab:blue", "residual")
    if run.config.update_latents:
        _draw_band(ax, x, run.acceptance_latent, "tab:orange", "latent")
    _axes_over_steps(ax, run, "acceptance rate")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=7)
    ax.set_title(f"MALA acceptance per {run.config.num_steps} steps, T = {run.config.temperature:g}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def save_strips(run, path, scale=3):
    """One row per kept chain, one column per kept step (labelled), as a PNG."""
    strips = run.strips.repeat(scale, 2).repeat(scale, 3)  # [S, N, H, W, C]
    num_steps, num_chains, h, w, c = strips.shape
    gap = 2
    grid = np.full((num_chains * (h + gap) - gap, num_steps * (w + gap) - gap, c), 128, np.uint8)
    for s in range(num_steps):
        for n in range(num_chains):
            grid[n * (h + gap) : n * (h + gap) + h, s * (w + gap) : s * (w + gap) + w] = strips[s, n]
    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * num_steps), 0.9 * num_chains + 0.6))
    ax.imshow(grid[..., 0] if c == 1 else grid, cmap="gray" if c == 1 else None, vmin=0, vmax=255)
    ax.set_xticks([s * (w + gap) + w / 2 for s in range(num_steps)], [str(s) for s in run.strip_steps], fontsize=7)
    ax.set_yticks([])
    ax.set_xlabel("Langevin step")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


FILES = {"json": "longrun.json", "energy": "energy.png", "strips": "strips.png", "acceptance": "acceptance.png"}


def write_long_run(run, paths, info=None):
    """Write the JSON and figures of ``run``.

    Args:
        run: ``LongRun``.
        paths: ``{key of FILES: path}``; the acceptance plot is written only
            under MALA, and an existing one removed otherwise.
        info: extra JSON fields (e.g. the model path).
    """
    matplotlib.use("Agg")
    record = {**(info or {}), **summary(run)}
    paths["json"].write_text(json.dumps(record, indent=1, allow_nan=True) + "\n")
    save_energy_plot(run, paths["energy"])
    save_strips(run, paths["strips"])
    if run.config.metropolis:
        save_acceptance_plot(run, paths["acceptance"])
    elif paths["acceptance"].exists():  # an earlier MALA run's, replaced by none (the caller checked overwriting)
        paths["acceptance"].unlink()


def mark_multiples(train_steps, multiples=(10, 100)):
    """``{"10× training": 10·train_steps, ...}``: the marks of a model trained with ``train_steps``-step chains."""
    return {f"{m}× training": m * train_steps for m in multiples} if train_steps > 0 else {}
