"""The label-free feature network of the quality report: a contrastive encoder trained on a data set's train split.

FID's Inception network needs a download and knows ImageNet's photographs,
not a user's glyphs or product shots; a classifier needs labels. So the
report's Fréchet distance and KID use the features of a small convolutional
encoder trained, without labels, on the train split of the very data set the
model learned, with the contrastive objective of SimCLR (Chen et al. 2020,
"A simple framework for contrastive learning of visual representations"):
two random shifts of one image must map to nearby features, crops of other
images to distant ones. Its features tell images apart by what varies
across the data set (shape, stroke, texture, colour) and ignore small
shifts. The only augmentation is a shift by whole pixels, so the features stay
sensitive to blur, noise and colour, which a model's samples must get right.

The encoder is trained deterministically (fixed seeds, stateless draws) and
cached under ``$HAT_EBM_CACHE``, keyed by a hash of the train images, its
settings and the TensorFlow and Keras versions.
"""

import dataclasses
import logging
import math
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from hat_ebm_tf.quality.cache import (
    UNREADABLE,
    FitSettings,
    array_digest,
    cache_dir,
    cache_key,
    load_weights,
    save_weights,
)

log = logging.getLogger("hat_ebm_tf.quality")


ENCODER_FIT = FitSettings(epochs=50, batch_size=128, learning_rate=2e-3)


@dataclasses.dataclass(frozen=True)
class EncoderSettings:
    """Everything that determines the encoder's weights, with the train images and the TF and Keras versions.

    Attributes:
        widths: filters of the three stages of two 3×3 ReLU convolutions
            each; the first two stages end with a 2×2 max-pooling, the last
            with a global average pooling (the features).
        projection_dim: output of the two-layer projection head that the
            contrastive loss sees (the features are taken before it).
        max_steps: the most training steps (a small data set trains in a
            few seconds).
        temperature: the contrastive loss's softmax temperature.
        max_shift: each view is the image moved by a random whole number of
            pixels, up to this fraction of its side (edges mirrored): whole
            pixels, so that no view is smoothed by interpolation and the
            features stay sensitive to blur and noise.
        fit: epochs over the train images (at most ``max_steps`` steps),
            batch (each image seen as two crops), rate and seed.
    """

    widths: tuple[int, int, int] = (16, 32, 64)
    projection_dim: int = 64
    max_steps: int = 400
    temperature: float = 0.2
    max_shift: float = 0.125
    fit: FitSettings = ENCODER_FIT


ENCODER = EncoderSettings()


@dataclasses.dataclass(frozen=True, eq=False)
class Encoder:
    """A trained encoder.

    Attributes:
        model: ``[B, S, S, C]`` float in [-1, 1] → ``[B, widths[-1]]`` features,
            divided by ``feature_scale``.
        feature_scale: the root mean square of the raw features of the train
            split, so that features are about 1 in size (KID's cubic kernel
            expects that).
        train_seconds: wall time of its training (when trained in this process).
        path: its cache file.
        loaded: read from the cache (True) or trained now (False).
    """

    model: keras.Model
    feature_scale: float
    train_seconds: float
    path: Path
    loaded: bool

    def features(self, images):
        """``[N, D]`` float64 features of ``[N, S, S, C]`` images in [-1, 1]."""
        return _raw_features(self.model, np.asarray(images, np.float32)).astype(np.float64) / self.feature_scale


def _build(shape, settings):
    """The encoder ``[B, S, S, C]`` → ``[B, widths[-1]]``; every layer float32 (whatever a run's policy)."""
    inputs = keras.Input(shape, dtype="float32")
    x = inputs
    pooled = []
    for stage, filters in enumerate(settings.widths):
        for k in range(2):
            init = keras.initializers.HeNormal(seed=settings.fit.seed + 2 * stage + k)
            x = keras.layers.Conv2D(
                filters, 3, padding="same", activation="relu", kernel_initializer=init, dtype="float32"
            )(x)
        pooled.append(keras.layers.GlobalAveragePooling2D(dtype="float32")(x))
        if stage < len(settings.widths) - 1:
            x = keras.layers.MaxPooling2D(dtype="float32")(x)
    return keras.Model(inputs, [pooled[-1], keras.layers.Concatenate(dtype="float32")(pooled)], name="quality_encoder")


def _projection(settings):
    return keras.Sequential(
        [
            keras.layers.Dense(
                settings.widths[-1],
                activation="relu",
                kernel_initializer=keras.initializers.HeNormal(seed=settings.fit.seed + 100),
                dtype="float32",
            ),
            keras.layers.Dense(
                settings.projection_dim,
                kernel_initializer=keras.initializers.GlorotUniform(seed=settings.fit.seed + 101),
                dtype="float32",
            ),
        ]
    )


def _shifts(images, seed, fraction):
    """Each image moved by a random whole number of pixels, up to ``fraction`` of its side (edges mirrored).

    Args:
        images: ``[B, S, S, C]``.
        seed: ``[2]`` int seed of the stateless draws.
        fraction: the largest shift as a fraction of ``S``.
    """
    size = images.shape[1]
    pad = max(1, round(fraction * size))
    padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="SYMMETRIC")
    corners = tf.random.stateless_uniform([tf.shape(images)[0], 2], seed, 0, 2 * pad + 1, dtype=tf.int32)
    rows = corners[:, :1] + tf.range(size)[None]
    cols = corners[:, 1:] + tf.range(size)[None]
    return tf.gather(tf.gather(padded, rows, axis=1, batch_dims=1), cols, axis=2, batch_dims=1)


def contrastive_loss(a, b, temperature):
    """SimCLR's NT-Xent loss of two views ``[B, D]``: each row's match is its other view, among all 2B − 1 others."""
    z = tf.math.l2_normalize(tf.concat([a, b], axis=0), axis=1)
    n = tf.shape(a)[0]
    logits = tf.matmul(z, z, transpose_b=True) / temperature - 1e9 * tf.eye(2 * n)
    targets = tf.concat([tf.range(n, 2 * n), tf.range(n)], axis=0)
    return tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True))


def _train(images, settings):
    """The encoder trained on ``images`` ``[N, S, S, C]`` in [-1, 1]: ``(model, seconds)``."""
    start = time.time()
    with tf.device("/CPU:0"):
        encoder = _build(images.shape[1:], settings)
        head = _projection(settings)
        head.build((None, settings.widths[-1]))
        variables = encoder.trainable_weights + head.trainable_weights
        batch = min(settings.fit.batch_size, len(images))
        steps = min(settings.max_steps, math.ceil(settings.fit.epochs * len(images) / batch))
        schedule = keras.optimizers.schedules.CosineDecay(settings.fit.learning_rate, steps)
        optimizer = keras.optimizers.Adam(schedule)
        optimizer.build(variables)
        table = tf.constant(images)

        @tf.function(autograph=False)
        def step(index):
            seed = tf.stack([tf.constant(settings.fit.seed, tf.int64), tf.cast(index, tf.int64)])
            rows = tf.random.experimental.stateless_shuffle(tf.range(len(images)), seed)[:batch]
            x = tf.gather(table, rows)
            with tf.GradientTape() as tape:
                views = [head(encoder(_shifts(x, seed + 2 * k + 10, settings.max_shift))[0]) for k in range(2)]
                loss = contrastive_loss(*views, settings.temperature)
            optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))

        for index in range(steps):
            step(tf.constant(index, tf.int64))
        log.info("trained the quality encoder in %.1f s", time.time() - start)
    return encoder, time.time() - start


def encoder_key(images, settings=ENCODER):
    """16 hex digits naming the encoder that ``settings`` train on ``images`` with this TensorFlow and Keras."""
    return cache_key(images=array_digest(np.asarray(images, np.float32)), settings=dataclasses.asdict(settings))


def quality_encoder(images, directory=None, settings=ENCODER):
    """The encoder of a data set's train split: read from the cache, or trained and cached.

    The cache file is ``quality_encoder-<key>.npz`` in ``directory`` (default:
    ``cache_dir()``). The encoder is kept in memory for the process.

    Args:
        images: the train split, ``[N, S, S, C]`` float in [-1, 1] at the model's size.
        directory: the cache directory, or None for ``cache_dir()``.
        settings: ``EncoderSettings``.

    Returns:
        ``Encoder``.
    """
    images = np.asarray(images, np.float32)
    directory = Path(directory) if directory else cache_dir()
    path = (directory / f"quality_encoder-{encoder_key(images, settings)}.npz").resolve()
    if path not in _LOADED:
        _LOADED[path] = _read_or_train(path, images, settings)
    return _LOADED[path]


# The encoders read or trained in this process, by cache file (its name hashes the images and the settings).
_LOADED = {}


def _read_or_train(path, images, settings):
    if path.is_file():
        try:
            weights, metadata = load_weights(path)
            with tf.device("/CPU:0"):
                model = _build(images.shape[1:], settings)
                model.set_weights(weights)  # a ValueError on a shape mismatch
            return Encoder(model, metadata["feature_scale"], metadata["train_seconds"], path, loaded=True)
        except UNREADABLE as err:
            log.warning("quality encoder cache %s is unreadable (%s); training it again", path, err)
    model, seconds = _train(images, settings)
    scale = float(np.sqrt(np.mean(np.square(_raw_features(model, images)))))
    metadata = {"settings": dataclasses.asdict(settings), "feature_scale": scale, "train_seconds": seconds}
    save_weights(path, model.get_weights(), metadata, "the quality encoder")
    return Encoder(model, scale, seconds, path, loaded=False)


def _raw_features(model, images, batch_size=500):
    """``[N, D]`` float32 features of ``model`` (its second output: every stage's pooled activations)."""
    outputs = [
        np.asarray(model(images[i : i + batch_size], training=False)[1]) for i in range(0, len(images), batch_size)
    ]
    return np.concatenate(outputs)
