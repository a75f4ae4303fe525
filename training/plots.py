"""PNG figures of a run: sample grids and training curves (matplotlib, Agg)."""

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def image_grid(images):
    """Tile uint8 ``[N, H, W, C]`` images into one ``[rows·H, cols·W, C]`` array."""
    images = np.asarray(images)
    n, h, w, c = images.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = np.zeros((rows * h, cols * w, c), dtype=images.dtype)
    for i, image in enumerate(images):
        r, q = divmod(i, cols)
        grid[r * h : (r + 1) * h, q * w : (q + 1) * w] = image
    return grid


def save_image_grid(images, path, scale=4):
    """Write uint8 ``[N, H, W, C]`` images as one PNG grid, each pixel ``scale``×``scale``."""
    grid = image_grid(images).repeat(scale, 0).repeat(scale, 1)
    if grid.shape[-1] == 1:
        plt.imsave(path, grid[..., 0], cmap="gray", vmin=0, vmax=255)
    else:
        plt.imsave(path, grid)


def save_training_curves(steps, history, path):
    """Plot each tracker of a Keras history (dict name → per-epoch values) against steps."""
    names = sorted(history)
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 2.8), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        ax.plot(steps, history[name], marker=".")
        ax.set_title(name)
        ax.set_xlabel("step")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
