"""Input data: sources of images in [-1, 1] and the tf.data pipelines over them."""

import numpy as np
import tensorflow as tf


def uint8_to_model_range(images):
    """uint8 pixels ``[..., C]`` in [0, 255] → float32 in [-1, 1]."""
    return tf.cast(images, tf.float32) / 127.5 - 1.0


def model_range_to_uint8(images):
    """Float images in [-1, 1] (values outside are clipped) → uint8 in [0, 255]."""
    images = np.asarray(images, dtype=np.float32)
    return np.clip(np.round((images + 1.0) * 127.5), 0, 255).astype(np.uint8)


def load_digits(image_size=16, return_labels=False):
    """scikit-learn's bundled 8×8 digits (UCI optdigits test set), offline.

    The 4-bit grey levels (0..16) are mapped to [-1, 1] and resized with a
    bilinear filter to ``image_size``.

    Args:
        image_size: output height and width (≥ 8).
        return_labels: also return the ``[N]`` int labels 0..9.

    Returns:
        ``[1797, image_size, image_size, 1]`` float32 in [-1, 1] (and labels).
    """
    from sklearn.datasets import load_digits as sklearn_digits

    if not isinstance(image_size, int) or image_size < 8:
        raise ValueError(f"load_digits: image_size={image_size!r} must be an integer >= 8")
    bunch = sklearn_digits()
    images = bunch.images.astype(np.float32)[..., None] / 8.0 - 1.0
    if image_size != 8:
        images = tf.image.resize(images, (image_size, image_size), method="bilinear", antialias=True)
        images = np.clip(images.numpy(), -1.0, 1.0)
    return (images, bunch.target.astype(np.int64)) if return_labels else images


def array_dataset(images, batch_size, training=True, seed=0):
    """A ``tf.data`` pipeline over an in-memory ``[N, H, W, C]`` float array.

    Training pipelines shuffle (seeded), repeat, batch with drop-remainder and
    prefetch; evaluation pipelines batch in order and keep the remainder.
    The dataset yields image tensors only (no labels), which Keras 3 needs
    under ``MultiWorkerMirroredStrategy`` (keras #20585).

    Args:
        images: ``[N, H, W, C]`` float32 in [-1, 1].
        batch_size: batch size of the pipeline.
        training: training (True) or evaluation (False) pipeline.
        seed: shuffle seed.
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4:
        raise ValueError(f"array_dataset: images have shape {images.shape}; expected [N, H, W, C]")
    if training and len(images) < batch_size:
        raise ValueError(f"array_dataset: {len(images)} images cannot fill one batch of {batch_size}")
    ds = tf.data.Dataset.from_tensor_slices(images)
    if training:
        ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True).repeat()
    ds = ds.batch(batch_size, drop_remainder=training)
    return ds.prefetch(tf.data.AUTOTUNE)
