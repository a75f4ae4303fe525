"""The quality report's label-free encoder (``hat_ebm_tf.quality.encoder``): contrastive, deterministic, cached."""

import dataclasses

import numpy as np
import tensorflow as tf

from hat_ebm_tf.data import load_digits
from hat_ebm_tf.quality import encoder as qe

TINY = dataclasses.replace(
    qe.ENCODER, widths=(4, 4, 8), max_steps=5, fit=dataclasses.replace(qe.ENCODER.fit, batch_size=16)
)


def test_shifts_move_each_image_by_whole_pixels():
    images = tf.reshape(tf.range(2 * 8 * 8, dtype=tf.float32), [2, 8, 8, 1])
    shifted = qe._shifts(images, tf.constant([1, 2], tf.int64), 0.25).numpy()
    assert shifted.shape == (2, 8, 8, 1)
    # Each output is an 8×8 window of the mirror-padded image: its pixel values, no interpolated ones.
    assert set(np.unique(shifted[0])) <= set(images[0].numpy().ravel())
    assert set(np.unique(shifted[1])) <= set(images[1].numpy().ravel())


def test_the_contrastive_loss_rewards_matching_views():
    a = tf.random.stateless_normal([8, 4], [0, 1])
    matched = qe.contrastive_loss(a, a + 0.01, 0.2)
    shuffled = qe.contrastive_loss(a, tf.roll(a, 1, axis=0), 0.2)
    assert float(matched) < float(shuffled)


def test_the_encoder_is_deterministic_cached_and_keyed_by_its_images(tmp_path):
    images = load_digits(16, split="train[:64]")
    first = qe.quality_encoder(images, tmp_path / "a", TINY)
    again = qe.quality_encoder(images, tmp_path / "b", TINY)  # trained again elsewhere: the same weights
    assert not first.loaded and not again.loaded and first.path.name == again.path.name
    for x, y in zip(first.model.get_weights(), again.model.get_weights(), strict=True):
        np.testing.assert_array_equal(x, y)
    features = first.features(images)
    assert features.shape == (64, 16)  # every stage's pooled activations: 4 + 4 + 8
    assert abs(np.sqrt(np.mean(features**2)) - 1.0) < 1e-4  # scaled to unit size on the train images
    qe._LOADED.clear()  # a new process: read from the file
    read = qe.quality_encoder(images, tmp_path / "a", TINY)
    assert read.loaded
    np.testing.assert_allclose(read.features(images), features, rtol=1e-6)
    assert qe.encoder_key(images[:32], TINY) != qe.encoder_key(images, TINY)
