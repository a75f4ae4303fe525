"""Checks of image tensors at the library's edges, with errors that name the problem."""

import numpy as np
import tensorflow as tf


def check_images(images, image_shape, where, value_range=None):
    """Validate a batch of images and return it as a float tensor.

    Shape and dtype are checked when the tensor is made (a ``ValueError``);
    the value range, when given, with an in-graph assertion
    (``InvalidArgumentError``) so that it also holds inside ``tf.function``.

    Args:
        images: ``[B, H, W, C]`` float array or tensor.
        image_shape: expected ``(H, W, C)``.
        where: name of the caller, used in messages.
        value_range: optional ``(low, high)`` bounds of the values.

    Returns:
        The images as a float tensor.
    """
    if not tf.is_tensor(images):
        images = tf.convert_to_tensor(images)
    if not images.dtype.is_floating:
        raise ValueError(
            f"{where}: images have dtype {images.dtype.name}; expected float in [-1, 1] "
            "(convert uint8 pixels with x / 127.5 - 1)"
        )
    expected = [None, *image_shape]
    if images.shape.rank != 4:
        raise ValueError(f"{where}: images have rank {images.shape.rank} (shape {images.shape}); expected {expected}")
    if not images.shape[1:].is_compatible_with(image_shape):
        raise ValueError(
            f"{where}: images have shape {images.shape.as_list()}; expected {expected} "
            f"(height, width, channels = {tuple(image_shape)})"
        )
    if value_range is not None:
        low, high = value_range
        with tf.control_dependencies(
            [
                tf.debugging.assert_greater_equal(
                    images, tf.cast(low, images.dtype), message=f"{where}: image values below {low}"
                ),
                tf.debugging.assert_less_equal(
                    images, tf.cast(high, images.dtype), message=f"{where}: image values above {high}"
                ),
            ]
        ):
            images = tf.identity(images)
    return images


def check_image_array(images, where, pixels_only=False, error=ValueError):
    """Validate an in-memory batch of images, as files, the feature extractors and the OOD reports take them.

    Args:
        images: array-like ``[N, H, W, C]``, N > 0, C = 1 or 3: uint8 pixels
            in [0, 255], or (unless ``pixels_only``) floats in [-1, 1].
        where: the caller or file, named in messages.
        pixels_only: accept uint8 pixels only.
        error: the exception type raised (e.g. ``DataError`` for a file).

    Returns:
        The uint8 images as given, or the float images as float32.

    Raises:
        error: naming ``where``, what was found and what is expected.
    """
    images = np.asarray(images)
    floats = not pixels_only and np.issubdtype(images.dtype, np.floating)
    if (
        images.ndim != 4
        or not len(images)
        or images.shape[-1] not in (1, 3)
        or not (images.dtype == np.uint8 or floats)
    ):
        expected = "uint8 images" if pixels_only else "uint8 images or float images in [-1, 1]"
        raise error(
            f"{where}: expected {expected} [N, H, W, 1 or 3] with N > 0, got {images.dtype} {list(images.shape)}"
        )
    if not floats:
        return images
    images = images.astype(np.float32, copy=False)
    low, high = float(images.min()), float(images.max())
    if not (-1.0 <= low and high <= 1.0):  # NaN fails too
        raise error(f"{where}: float images must be in [-1, 1], got values in [{low:g}, {high:g}]")
    return images
