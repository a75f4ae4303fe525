"""PNG figures of a run: sample grids and training curves (matplotlib, Agg)."""

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def image_grid(images, gap=1, fill=128):
    """Tile uint8 ``[N, H, W, C]`` images into one array, ``gap`` pixels of grey ``fill`` between cells.

    Returns:
        uint8 ``[rows·(H + gap) − gap, cols·(W + gap) − gap, C]``, ``cols = ⌈√N⌉``.
    """
    images = np.asarray(images)
    n, h, w, c = images.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    # Mid-grey stands apart from both the black background and the white strokes of digits.
    grid = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap, c), fill, dtype=images.dtype)
    for i, image in enumerate(images):
        r, q = divmod(i, cols)
        top, left = r * (h + gap), q * (w + gap)
        grid[top : top + h, left : left + w] = image
    return grid


def save_image_grid(images, path, scale=4, gap=2):
    """Write uint8 ``[N, H, W, C]`` images as one PNG grid, each pixel ``scale``×``scale``, cells ``gap`` px apart."""
    images = np.asarray(images).repeat(scale, 1).repeat(scale, 2)
    grid = image_grid(images, gap=gap)
    if grid.shape[-1] == 1:
        plt.imsave(path, grid[..., 0], cmap="gray", vmin=0, vmax=255)
    else:
        plt.imsave(path, grid)


def save_training_curves(steps, history, path):
    """Plot each tracker of a Keras history (dict name → per-epoch values) against steps.

    Values that are missing (None, NaN: e.g. a quality figure of an epoch
    without an evaluation) are left out of their panel.
    """
    names = sorted(history)
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 2.8), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        values = np.asarray([np.nan if v is None else v for v in history[name]], dtype=np.float64)
        finite = np.isfinite(values)
        ax.plot(np.asarray(steps)[finite], values[finite], marker=".")
        ax.set_title(name)
        ax.set_xlabel("step")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
