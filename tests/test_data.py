import numpy as np
import pytest

from hat_ebm_tf.data import array_dataset, load_digits, model_range_to_uint8, uint8_to_model_range


@pytest.mark.parametrize("size", [8, 16, 32])
def test_digits_shape_dtype_range(size):
    images, labels = load_digits(size, return_labels=True)
    assert images.shape == (1797, size, size, 1) and images.dtype == np.float32
    assert images.min() >= -1.0 and images.max() <= 1.0 and images.max() > 0.9
    assert sorted(set(labels.tolist())) == list(range(10))


def test_digits_bad_size_is_named():
    with pytest.raises(ValueError, match="image_size=4"):
        load_digits(4)


def test_uint8_conversions_roundtrip():
    pixels = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1)
    floats = uint8_to_model_range(pixels).numpy()
    assert floats.min() == -1.0 and floats.max() == 1.0
    np.testing.assert_array_equal(model_range_to_uint8(floats), pixels)


def test_training_pipeline_repeats_and_drops_remainder():
    images = np.zeros((10, 4, 4, 1), "float32")
    batches = list(array_dataset(images, 4, training=True).take(5))
    assert all(b.shape == (4, 4, 4, 1) for b in batches)
    evaluation = list(array_dataset(images, 4, training=False))
    assert [len(b) for b in evaluation] == [4, 4, 2]


def test_pipeline_errors_are_named():
    with pytest.raises(ValueError, match="expected \\[N, H, W, C\\]"):
        array_dataset(np.zeros((4, 4, 4)), 2)
    with pytest.raises(ValueError, match="3 images cannot fill one batch of 4"):
        array_dataset(np.zeros((3, 4, 4, 1)), 4)
