"""The classifiers of the labelled data sets (digits, glyphs): confidence and class shares of samples.

One small CNN per labelled set, on grey images of a fixed size (digits 16×16, glyphs 32×32), trained
deterministically on the set's train split (fixed seeds and epochs, ±1 pixel
shifts, CPU) and cached (``hat_ebm_tf.quality.cache``). The quality report
reads, for each image, the class probabilities (a sample's confidence is
its largest, and its class the most probable one) and the penultimate
features, on which it also reports a Fréchet distance for these sets.
Images of another size are brought to the classifier's with the data
pipeline's antialiased filter, and colour images to grey, first.
"""

import dataclasses
import functools
import logging
import math
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from hat_ebm_tf.data import load_digits
from hat_ebm_tf.offline_sets import GLYPH_CLASSES, glyphs
from hat_ebm_tf.quality.cache import UNREADABLE, FitSettings, cache_dir, cache_key, load_weights, save_weights

log = logging.getLogger("hat_ebm_tf.quality")


DIGITS_FIT = FitSettings(epochs=30, batch_size=50, learning_rate=3e-3)


@dataclasses.dataclass(frozen=True)
class ClassifierSettings:
    """Everything that determines a classifier's weights, with its data set and the TF and Keras versions.

    Attributes:
        conv_filters: filters of the 3×3 ReLU convolutions in order; ``0``
            marks a 2×2 max-pooling.
        feature_dim: width of the penultimate (feature) layer.
        dropout: dropout rate after the feature layer, in training.
        max_shift: augmentation: every image is shifted by up to this many
            pixels in each direction (the background fills in).
        fit: epochs over the train split, batch, rate and the seed of the
            initialisation, shuffling, shifts and dropout.
    """

    conv_filters: tuple[int, ...] = (32, 32, 0, 64, 0)
    feature_dim: int = 64
    dropout: float = 0.3
    max_shift: int = 1
    fit: FitSettings = DIGITS_FIT


def prepare(images, size):
    """Images ``[N, S, S, C]`` in [-1, 1] (C 1 or 3) as a classifier takes them: ``[N, size, size, 1]`` float32."""
    images = tf.cast(images, tf.float32)
    if images.shape[-1] == 3:
        images = tf.reduce_mean(images, axis=-1, keepdims=True)
    if images.shape[1] != size:
        images = tf.image.resize(images, (size, size), method="bilinear", antialias=True)
    return np.clip(np.asarray(images), -1.0, 1.0)


def _digits(split):
    return load_digits(16, return_labels=True, split=split)


def _glyphs(split):
    images, labels = glyphs(split, return_labels=True)
    return np.asarray(images, np.float32) / 127.5 - 1.0, labels


@dataclasses.dataclass(frozen=True)
class LabelledSet:
    """A labelled data set the quality report knows: its classes, its split reader and its classifier's settings.

    Attributes:
        name: the data source kind (``digits``, ``glyphs``).
        classes: the class names, in label order.
        size: the classifier's image side.
        read: ``split → (images [N, size, size, 1] in [-1, 1], labels [N])`` for ``train`` and ``held_out``.
        settings: ``ClassifierSettings``.
    """

    name: str
    classes: tuple[str, ...]
    size: int
    read: object
    settings: ClassifierSettings


LABELLED_SETS = {
    "digits": LabelledSet("digits", tuple("0123456789"), 16, _digits, ClassifierSettings()),
    # Glyphs as small as half the side tell their classes apart at 32×32, not at 16×16: a third pooling stage,
    # a gentler rate, and (five times the digits' images) fewer epochs. Some classes look alike in some fonts
    # (0 and O, 1 and I), which bounds its accuracy near 0.9.
    "glyphs": LabelledSet(
        "glyphs",
        tuple(GLYPH_CLASSES),
        32,
        _glyphs,
        ClassifierSettings(
            conv_filters=(32, 0, 64, 0, 64, 0), fit=FitSettings(epochs=8, batch_size=50, learning_rate=1e-3)
        ),
    ),
}


@dataclasses.dataclass(frozen=True, eq=False)
class Classifier:
    """A trained classifier and its feature extractor.

    Attributes:
        labelled: the ``LabelledSet`` it was trained on.
        model: ``[B, S, S, 1]`` float in [-1, 1] (``S = labelled.size``) → ``[B, K]`` class probabilities.
        features: ``[B, S, S, 1]`` → ``[B, feature_dim]`` penultimate-layer
            features (after ReLU), divided by ``feature_scale``.
        feature_scale: the root mean square of the raw features of the train
            split. Dividing by it brings features to the scale that KID's
            cubic kernel ``(x·y / D + 1)³`` expects (about 1), instead of
            tens, where single images dominate the kernel sums.
        held_out_accuracy: accuracy on the held-out split.
        train_seconds: wall time its training took (when it was trained).
        path: its cache file.
        loaded: read from the cache (True) or trained in this call (False).
    """

    labelled: LabelledSet
    model: keras.Model
    features: keras.Model
    feature_scale: float
    held_out_accuracy: float
    train_seconds: float
    path: object
    loaded: bool

    @functools.cached_property
    def _both(self):
        return keras.Model(self.model.inputs[0], [self.model.layers[-1].output, self.features.output])

    def classify(self, images, batch_size=500):
        """``(probabilities [N, K], features [N, D])`` float64 of ``[N, S, S, C]`` images in [-1, 1]."""
        prepared = prepare(images, self.labelled.size)
        outputs = [
            self._both(prepared[i : i + batch_size], training=False) for i in range(0, len(prepared), batch_size)
        ]
        return tuple(np.concatenate([np.asarray(o[k]) for o in outputs]).astype(np.float64) for k in range(2))


def classifier_key(labelled):
    """16 hex digits naming ``labelled``'s classifier with this TensorFlow and Keras."""
    return cache_key(data=labelled.name, classes=len(labelled.classes), settings=dataclasses.asdict(labelled.settings))


def classifier_for(name, directory=None):
    """The classifier of labelled set ``name``: read from the cache, or trained and cached.

    The cache file is ``<name>_classifier-<key>.npz`` in ``directory``
    (default: ``cache_dir()``). The classifier is kept in memory for the process.

    Args:
        name: a key of ``LABELLED_SETS``.
        directory: cache directory, or None for ``cache_dir()``.

    Returns:
        ``Classifier``.
    """
    labelled = LABELLED_SETS[name]
    path = (Path(directory) if directory else cache_dir()) / f"{name}_classifier-{classifier_key(labelled)}.npz"
    return _classifier_at(path.resolve(), labelled)


@functools.cache
def _classifier_at(path, labelled):
    if path.is_file():
        try:
            weights, metadata = load_weights(path)
            if metadata.get("key") != classifier_key(labelled):
                raise ValueError(f"it holds the classifier {metadata.get('key')}, not {classifier_key(labelled)}")
            with tf.device("/CPU:0"):
                model = _build(labelled)
                model.set_weights(weights)  # a ValueError on a shape mismatch
            return _classifier(labelled, model, metadata, path, loaded=True)
        except UNREADABLE as err:
            log.warning("%s classifier cache %s is unreadable (%s); training it again", labelled.name, path, err)
    start = time.time()
    model = _train(labelled)
    seconds = time.time() - start
    images, labels = labelled.read("held_out")
    accuracy = float(np.mean(np.argmax(model.predict(images, batch_size=500, verbose=0), axis=1) == labels))
    raw = keras.Model(model.inputs[0], model.get_layer("features").output)
    train_images = labelled.read("train")[0]
    scale = float(np.sqrt(np.mean(np.square(raw.predict(train_images, batch_size=500, verbose=0)))))
    log.info("trained the %s classifier in %.1f s: held-out accuracy %.4f", labelled.name, seconds, accuracy)
    metadata = {
        "key": classifier_key(labelled),
        "settings": dataclasses.asdict(labelled.settings),
        "feature_scale": scale,
        "held_out_accuracy": accuracy,
        "train_seconds": seconds,
    }
    save_weights(path, model.get_weights(), metadata, f"the {labelled.name} classifier")
    return _classifier(labelled, model, metadata, path, loaded=False)


def _classifier(labelled, model, metadata, path, loaded):
    rescale = keras.layers.Rescaling(1.0 / metadata["feature_scale"], dtype="float32")
    features = keras.Model(model.inputs[0], rescale(model.get_layer("features").output))
    return Classifier(
        labelled,
        model,
        features,
        metadata["feature_scale"],
        metadata["held_out_accuracy"],
        metadata["train_seconds"],
        path,
        loaded,
    )


def _build(labelled):
    settings = labelled.settings
    # Every layer is float32, whatever the global policy of a mixed-precision training run.
    layers = [keras.Input((labelled.size, labelled.size, 1), dtype="float32")]
    for index, filters in enumerate(settings.conv_filters):
        if filters == 0:
            layers.append(keras.layers.MaxPooling2D(dtype="float32"))
            continue
        init = keras.initializers.HeNormal(seed=settings.fit.seed + index)
        layers.append(
            keras.layers.Conv2D(filters, 3, padding="same", activation="relu", kernel_initializer=init, dtype="float32")
        )
    count = len(settings.conv_filters)
    layers += [
        keras.layers.Flatten(dtype="float32"),
        keras.layers.Dense(
            settings.feature_dim,
            activation="relu",
            kernel_initializer=keras.initializers.HeNormal(seed=settings.fit.seed + count),
            name="features",
            dtype="float32",
        ),
        keras.layers.Dropout(settings.dropout, seed=settings.fit.seed, dtype="float32"),
        keras.layers.Dense(
            len(labelled.classes),
            activation="softmax",
            kernel_initializer=keras.initializers.GlorotUniform(seed=settings.fit.seed + count + 1),
            dtype="float32",
        ),
    ]
    return keras.Sequential(layers, name=f"{labelled.name}_classifier")


def _shifted(images, rng, max_shift):
    """Each ``[H, W, 1]`` image moved by a random ``(dy, dx)`` in ``[-max_shift, max_shift]²``; -1 fills in."""
    height, width = images.shape[1:3]
    padded = np.pad(images, ((0, 0), (max_shift,) * 2, (max_shift,) * 2, (0, 0)), constant_values=-1.0)
    out = np.empty_like(images)
    for i, (dy, dx) in enumerate(rng.integers(-max_shift, max_shift + 1, size=(len(images), 2))):
        top, left = max_shift - dy, max_shift - dx
        out[i] = padded[i, top : top + height, left : left + width]
    return out


def _train(labelled):
    """The classifier trained on the train split: one ``fit`` over a pre-drawn, shuffled and shifted stream.

    Nothing global is touched (no global seeds): every random draw comes from
    ``settings.fit.seed``. On CPU the ops are deterministic, so the same settings
    and versions give the same weights.
    """
    settings = labelled.settings
    images, labels = labelled.read("train")
    rng = np.random.default_rng(settings.fit.seed)
    stream, targets = [], []
    for _ in range(settings.fit.epochs):
        order = rng.permutation(len(images))
        stream.append(_shifted(images[order], rng, settings.max_shift))
        targets.append(labels[order])
    steps = math.ceil(settings.fit.epochs * len(images) / settings.fit.batch_size)
    with tf.device("/CPU:0"):
        model = _build(labelled)
        schedule = keras.optimizers.schedules.CosineDecay(settings.fit.learning_rate, steps)
        model.compile(optimizer=keras.optimizers.Adam(schedule), loss="sparse_categorical_crossentropy")
        model.fit(
            np.concatenate(stream),
            np.concatenate(targets),
            batch_size=settings.fit.batch_size,
            epochs=1,
            shuffle=False,
            verbose=0,
        )
    return model
