"""Checks of image batches (``hat_ebm_tf.validation``): what passes, and the message naming what does not."""

import re

import numpy as np
import pytest
import tensorflow as tf

from hat_ebm_tf.errors import DataError
from hat_ebm_tf.validation import check_image_array, check_images

SHAPE = (16, 16, 1)


def test_check_images_passes_float_batches_through():
    images = np.linspace(-1, 1, 2 * 16 * 16).reshape(2, *SHAPE)
    checked = check_images(images, SHAPE, "energy", value_range=(-1.0, 1.0))
    assert tf.is_tensor(checked) and checked.dtype == tf.float64
    np.testing.assert_array_equal(checked, images)
    # A batch of unknown size inside a tf.function is compatible.
    traced = tf.function(lambda x: check_images(x, SHAPE, "energy"), input_signature=[tf.TensorSpec([None, *SHAPE])])
    assert traced(tf.zeros([3, *SHAPE])).shape == (3, *SHAPE)


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (
            np.zeros((2, *SHAPE), np.uint8),
            "energy: images have dtype uint8; expected float in [-1, 1] (convert uint8 pixels with x / 127.5 - 1)",
        ),
        (np.zeros(SHAPE, np.float32), "energy: images have rank 3 (shape (16, 16, 1)); expected [None, 16, 16, 1]"),
        (
            np.zeros((2, 8, 8, 1), np.float32),
            "images have shape [2, 8, 8, 1]; expected [None, 16, 16, 1] (height, width, channels = (16, 16, 1))",
        ),
        (
            np.zeros((2, 16, 16, 3), np.float32),
            "energy: images have shape [2, 16, 16, 3]; expected [None, 16, 16, 1]",
        ),
    ],
    ids=["dtype", "rank", "size", "channels"],
)
def test_check_images_names_a_bad_dtype_or_shape(images, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        check_images(images, SHAPE, "energy")


@pytest.mark.parametrize(("value", "message"), [(1.5, "image values above 1"), (-2.0, "image values below -1")])
def test_check_images_asserts_the_value_range_in_the_graph(value, message):
    images = np.full((1, *SHAPE), value, np.float32)
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"fit: {message}"):
        check_images(images, SHAPE, "fit", value_range=(-1, 1))
    traced = tf.function(lambda x: check_images(x, SHAPE, "fit", value_range=(-1, 1)))
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"fit: {message}"):
        traced(tf.constant(images))
    np.testing.assert_array_equal(check_images(images, SHAPE, "fit"), images)  # no range given, none checked


def test_check_image_array_returns_pixels_as_given_and_floats_as_float32():
    pixels = np.zeros((2, 8, 8, 3), np.uint8)
    assert check_image_array(pixels, "x.npz") is pixels
    floats = check_image_array(np.full((1, 4, 4, 1), -1.0), "x.npy")
    assert floats.dtype == np.float32 and floats.shape == (1, 4, 4, 1)


@pytest.mark.parametrize(
    ("images", "pixels_only", "message"),
    [
        (np.zeros((0, 4, 4, 1), np.uint8), False, "x.npz: expected uint8 images or float images in [-1, 1] "),
        (np.zeros((4, 4, 1), np.uint8), False, "[N, H, W, 1 or 3] with N > 0, got uint8 [4, 4, 1]"),
        (np.zeros((1, 4, 4, 2), np.uint8), False, "got uint8 [1, 4, 4, 2]"),
        (np.zeros((1, 4, 4, 1), np.int32), False, "got int32 [1, 4, 4, 1]"),
        (np.zeros((1, 4, 4, 1), np.float32), True, "x.npz: expected uint8 images [N, H, W, 1 or 3] with N > 0, got"),
        (np.full((1, 4, 4, 1), 255.0), False, "x.npz: float images must be in [-1, 1], got values in [255, 255]"),
        (np.full((1, 4, 4, 1), np.nan), False, "float images must be in [-1, 1], got values in [nan, nan]"),
    ],
    ids=["empty", "rank", "channels", "int32", "pixels only", "pixel values as floats", "nan"],
)
def test_check_image_array_names_the_problem_with_the_error_type_given(images, pixels_only, message):
    with pytest.raises(DataError, match=re.escape(message)):
        check_image_array(images, "x.npz", pixels_only=pixels_only, error=DataError)
    with pytest.raises(ValueError, match=re.escape(message)):
        check_image_array(images, "x.npz", pixels_only=pixels_only)
