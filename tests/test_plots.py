"""The run directory's figures: sample grids with visible gaps, and training curves with missing values."""

import numpy as np
from PIL import Image

from hat_ebm_tf.plots import image_grid, save_image_grid, save_training_curves


def test_grid_cells_are_separated_by_a_grey_gap():
    images = np.stack([np.full((3, 2, 1), 10 * (i + 1), np.uint8) for i in range(5)])  # 3 columns, 2 rows
    grid = image_grid(images, gap=1)
    assert grid.shape == (2 * 3 + 1, 3 * 2 + 2, 1)
    np.testing.assert_array_equal(grid[:3, 3:5, 0], 20)  # the second image, after one gap column
    assert (grid[3, :, 0] == 128).all() and (grid[:, 2, 0] == 128).all() and (grid[:, 5, 0] == 128).all()
    np.testing.assert_array_equal(grid[4:, 6:, 0], 128)  # the empty sixth cell


def test_png_grid_has_a_visible_gap_between_scaled_cells(tmp_path):
    images = np.zeros((4, 16, 16, 1), np.uint8)  # black digits' background touches black: only the gap shows
    save_image_grid(images, tmp_path / "grid.png", scale=4, gap=2)
    png = np.asarray(Image.open(tmp_path / "grid.png").convert("L"))
    assert png.shape == (2 * 64 + 2, 2 * 64 + 2)
    assert (png[:, 64:66] == 128).all() and (png[64:66, :] == 128).all()
    assert (png[:64, :64] == 0).all() and (png[66:, 66:] == 0).all()


def test_training_curves_skip_missing_values(tmp_path):
    history = {"loss": [1.0, 0.5, 0.25], "quality_fd": [float("nan"), 3.0, None]}
    save_training_curves([10, 20, 30], history, tmp_path / "curve.png")
    assert Image.open(tmp_path / "curve.png").size[0] > 0
