"""The OOD data loader of ``hat_ebm_tf.evaluation.ood`` (the metrics are in tests/test_scoring.py)."""

import numpy as np
import pytest

from hat_ebm_tf.evaluation.ood import load_images


def test_load_images_reads_npz_and_npy(tmp_path):
    pixels = np.arange(2 * 16 * 16, dtype=np.uint8).reshape(2, 16, 16, 1)
    np.savez(tmp_path / "a.npz", images=pixels, labels=np.zeros(2))
    np.save(tmp_path / "b.npy", np.linspace(-1, 1, 3 * 4 * 4 * 3).reshape(3, 4, 4, 3))
    np.testing.assert_array_equal(load_images(tmp_path / "a.npz"), pixels)
    floats = load_images(tmp_path / "b.npy")
    assert floats.dtype == np.float32 and floats.shape == (3, 4, 4, 3)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("x.npz", {"pixels": np.zeros((1, 4, 4, 1), np.uint8)}, r"no array 'images' \(arrays: \['pixels'\]\)"),
        (
            "x.npy",
            np.zeros((4, 4, 1), np.uint8),
            r"float images in \[-1, 1\] \[N, H, W, 1 or 3\] with N > 0, got uint8 \[4,",
        ),
        ("x.npy", np.zeros((1, 4, 4, 1), np.int32), r"expected uint8 images or float images in \[-1, 1\].*got int32"),
        ("x.npy", np.full((1, 4, 4, 1), 255.0), r"float images must be in \[-1, 1\], got values in \[255, 255\]"),
        ("x.txt", None, "unsupported data file"),
        ("bad.npz", None, r"bad\.npz' is neither a \.npy nor a \.npz file"),
        ("missing.npy", None, "missing.npy' does not exist"),
    ],
)
def test_load_images_names_the_problem(tmp_path, name, content, message):
    path = tmp_path / name
    if isinstance(content, dict):
        np.savez(path, **content)
    elif content is not None:
        np.save(path, content)
    elif name != "missing.npy":
        path.write_text("1 2 3")
    with pytest.raises(ValueError, match=message):
        load_images(path)
