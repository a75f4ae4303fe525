"""Checks of image tensors at the library's edges, with errors that name the problem."""

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
