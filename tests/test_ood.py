"""The OOD data reader of ``hat_ebm_tf.evaluation.ood`` (the metrics are in tests/test_scoring.py).

`hat-ebm ood` reads its data as `hat-ebm export --calibrate` does (``hat_ebm_tf.data.read_source``): at the
model's image size and channels, whatever the size of the file's images.
"""

import numpy as np
import pytest

from hat_ebm_tf.data import load_digits, model_range_to_uint8, read_source
from hat_ebm_tf.errors import DataError
from hat_ebm_tf.evaluation.ood import read_data
from hat_ebm_tf.sources import parse_source


def test_array_files_are_read_at_the_models_size_as_the_calibration_reads_them(tmp_path):
    # The held-out digits as scikit-learn ships them (8×8), and as the 16×16 model takes them.
    pixels = model_range_to_uint8(load_digits(8, split="test"))
    np.savez(tmp_path / "small.npz", images=pixels, labels=np.zeros(len(pixels)))
    np.save(tmp_path / "floats.npy", pixels.astype(np.float32) / np.float32(127.5) - np.float32(1.0))
    np.save(tmp_path / "large.npy", np.repeat(np.repeat(pixels, 4, axis=1), 4, axis=2))  # 32×32
    digits = read_source(parse_source("digits:test", 16, 1))
    for name in ("small.npz", "floats.npy"):
        images = read_data(str(tmp_path / name), (16, 16, 1))
        assert images.shape == (398, 16, 16, 1) and images.dtype == np.float32
        np.testing.assert_allclose(images, digits, atol=1e-5, err_msg=name)
        calibration = read_source(parse_source(str(tmp_path / name), 16, 1))  # as `export --calibrate` reads it
        np.testing.assert_array_equal(images, calibration, err_msg=name)
    assert read_data(str(tmp_path / "large.npy"), (16, 16, 3), limit=5).shape == (5, 16, 16, 3)


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
        ("x.txt", None, r"data source '.*x.txt': not 'digits', 'glyphs' or 'photo-patches' \(each \[:SPLIT\]\)"),
        ("bad.npz", None, r"bad\.npz' is neither a \.npy nor a \.npz file"),
        ("missing.npy", None, "missing.npy' does not exist"),
    ],
)
def test_bad_data_is_named(tmp_path, name, content, message):
    path = tmp_path / name
    if isinstance(content, dict):
        np.savez(path, **content)
    elif content is not None:
        np.save(path, content)
    elif name != "missing.npy":
        path.write_text("1 2 3")
    with pytest.raises(DataError, match=message):
        read_data(str(path), (16, 16, 1))
