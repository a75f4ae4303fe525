"""A quality measure for digits samples, with the two reference rows that let a reader judge its figures.

The measure is a small CNN classifier of 16×16 digits, trained
deterministically on the train split of scikit-learn's digits
(``load_digits(16, split="train")``) and cached on disk. It scores a set of
images by:

- **confidence**: the mean max-probability;
- **class histogram**: the counts and fractions of the predicted classes;
- **FD**: the Fréchet distance between the Gaussian fits of the classifier's
  penultimate features of the images and of the held-out split;
- **KID** on the same features.

A figure alone says little, so ``quality_table`` scores two references beside
the samples, at the samples' image size and count:

- **floor**: real digits of the train split (the best a model of the train
  split can do, as the held-out digits are other writers' digits);
- **baseline**: a multivariate Gaussian fitted to the train split's pixels,
  sampled and clipped (what a model of pixel means and covariances reaches).

Images of another size (e.g. 32×32) are compared with the digits brought to
that size by the data pipeline, and all are resized to 16×16 for the
classifier.
"""

import copy
import dataclasses
import functools
import hashlib
import json
import logging
import math
import os
import time
import zipfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from threadpoolctl import threadpool_limits

from hat_ebm_tf.data import load_digits
from hat_ebm_tf.features import inception_cache_path
from hat_ebm_tf.metrics import frechet_distance_from_features, kernel_inception_distance
from hat_ebm_tf.outputs import replacing
from hat_ebm_tf.sources import DIGITS_TRAIN_SIZE
from hat_ebm_tf.validation import check_images

CACHE_ENV = "HAT_EBM_CACHE"
CLASSIFIER_SIZE = 16
NUM_CLASSES = 10
ROWS = ("samples", "floor", "baseline")
# Optional row of a run's report: the base generator's images, without the hat network's refinement.
GENERATOR_ROW = "generator"
# KID over the ~800 held-out digits: 50 rounds of (at most) 500 rows of each set.
KID_SUBSETS = 50
KID_SUBSET_SIZE = 500
REFERENCE_SEED = 0  # the floor's subset of train digits and the baseline's Gaussian draws
NUM_HELD_OUT = 1797 - DIGITS_TRAIN_SIZE  # scikit-learn's 1797 digits, less the train split
log = logging.getLogger("hat_ebm_tf.evaluation")


@dataclasses.dataclass(frozen=True)
class ClassifierSettings:
    """Everything that determines the classifier's weights; with the TF and Keras versions, its hash names the cache.

    Attributes:
        conv_filters: filters of the 3×3 ReLU convolutions in order; ``0``
            marks a 2×2 max-pooling.
        feature_dim: width of the penultimate (feature) layer.
        dropout: dropout rate after the feature layer, in training.
        epochs: passes over the train split.
        batch_size: images per step.
        learning_rate: Adam's initial rate, cosine-decayed to 0.
        max_shift: augmentation: every image is shifted by up to this many
            pixels in each direction (the background fills in).
        seed: seed of the initialisation, shuffling, shifts and dropout.
        revision: raised whenever the training code changes.
    """

    conv_filters: tuple[int, ...] = (32, 32, 0, 64, 0)
    feature_dim: int = 64
    dropout: float = 0.3
    epochs: int = 30
    batch_size: int = 50
    learning_rate: float = 3e-3
    max_shift: int = 1
    seed: int = 0
    revision: int = 1


CLASSIFIER = ClassifierSettings()


@dataclasses.dataclass(frozen=True, eq=False)
class DigitsClassifier:
    """The trained classifier and its feature extractor.

    Attributes:
        model: ``[B, 16, 16, 1]`` float in [-1, 1] → ``[B, 10]`` class probabilities.
        features: ``[B, 16, 16, 1]`` → ``[B, feature_dim]`` penultimate-layer
            features (after ReLU), divided by ``feature_scale``.
        feature_scale: the root mean square of the raw features of the train
            split. Dividing by it brings features to the scale that KID's
            cubic kernel ``(x·y / D + 1)³`` expects (about 1), instead of
            tens, where single images dominate the kernel sums.
        held_out_accuracy: accuracy on the held-out split (797 digits).
        train_seconds: wall time its training took (when it was trained).
        path: its cache file.
        loaded: read from the cache (True) or trained in this call (False).
    """

    model: keras.Model
    features: keras.Model
    feature_scale: float
    held_out_accuracy: float
    train_seconds: float
    path: Path
    loaded: bool

    @functools.cached_property
    def _both(self):
        return keras.Model(self.model.inputs[0], [self.model.layers[-1].output, self.features.output])

    def classify(self, images, batch_size=500):
        """``(probabilities [N, 10], features [N, D])`` (float64) of prepared ``[N, 16, 16, 1]`` images in [-1, 1]."""
        outputs = [self._both(images[i : i + batch_size], training=False) for i in range(0, len(images), batch_size)]
        return tuple(np.concatenate([np.asarray(o[k]) for o in outputs]).astype(np.float64) for k in range(2))


def cache_dir():
    """``$HAT_EBM_CACHE``, else the package's cache directory (``~/.cache/hat_ebm_tf``, where Inception is kept)."""
    return Path(os.environ.get(CACHE_ENV) or inception_cache_path().parent)


def classifier_key(settings=CLASSIFIER):
    """16 hex digits naming the classifier that ``settings`` train with this TensorFlow and Keras."""
    blob = json.dumps(
        {"settings": dataclasses.asdict(settings), "tensorflow": tf.__version__, "keras": keras.__version__},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def digits_classifier(directory=None, settings=CLASSIFIER):
    """The digits classifier: read from the cache, or trained (about 15 s on 2 cores) and cached.

    The cache file is ``digits_classifier-<key>.npz`` in ``directory``
    (default: ``cache_dir()``), keyed by ``classifier_key(settings)``. It is
    written atomically; a file that cannot be read is trained again and
    replaced. The classifier is kept in memory for the process.

    Args:
        directory: cache directory, or None for ``cache_dir()``.
        settings: ``ClassifierSettings``; the quality measure uses ``CLASSIFIER``.

    Returns:
        ``DigitsClassifier``.
    """
    path = Path(directory or cache_dir()) / f"digits_classifier-{classifier_key(settings)}.npz"
    return _classifier_at(path.resolve(), settings)


@functools.cache
def _classifier_at(path, settings):
    if path.is_file():
        try:
            return _load(path, settings)
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as err:
            log.warning("digits classifier cache %s is unreadable (%s); training it again", path, err)
    start = time.time()
    model = _train(settings)
    seconds = time.time() - start
    images, labels = load_digits(CLASSIFIER_SIZE, return_labels=True, split="held_out")
    accuracy = float(np.mean(np.argmax(model.predict(images, batch_size=500, verbose=0), axis=1) == labels))
    raw = keras.Model(model.inputs[0], model.get_layer("features").output)
    scale = float(np.sqrt(np.mean(np.square(raw.predict(load_digits(CLASSIFIER_SIZE), batch_size=500, verbose=0)))))
    log.info("trained the digits classifier in %.1f s: held-out accuracy %.4f", seconds, accuracy)
    metadata = {"feature_scale": scale, "held_out_accuracy": accuracy, "train_seconds": seconds}
    _save(path, model, settings, metadata)
    return _classifier(model, metadata, path, loaded=False)


def _classifier(model, metadata, path, loaded):
    rescale = keras.layers.Rescaling(1.0 / metadata["feature_scale"], dtype="float32")
    features = keras.Model(model.inputs[0], rescale(model.get_layer("features").output))
    return DigitsClassifier(
        model,
        features,
        metadata["feature_scale"],
        metadata["held_out_accuracy"],
        metadata["train_seconds"],
        path,
        loaded,
    )


def _build(settings):
    # Every layer is float32, whatever the global policy of a mixed-precision training run.
    layers = [keras.Input((CLASSIFIER_SIZE, CLASSIFIER_SIZE, 1), dtype="float32")]
    for index, filters in enumerate(settings.conv_filters):
        if filters == 0:
            layers.append(keras.layers.MaxPooling2D(dtype="float32"))
            continue
        init = keras.initializers.HeNormal(seed=settings.seed + index)
        layers.append(
            keras.layers.Conv2D(filters, 3, padding="same", activation="relu", kernel_initializer=init, dtype="float32")
        )
    count = len(settings.conv_filters)
    layers += [
        keras.layers.Flatten(dtype="float32"),
        keras.layers.Dense(
            settings.feature_dim,
            activation="relu",
            kernel_initializer=keras.initializers.HeNormal(seed=settings.seed + count),
            name="features",
            dtype="float32",
        ),
        keras.layers.Dropout(settings.dropout, seed=settings.seed, dtype="float32"),
        keras.layers.Dense(
            NUM_CLASSES,
            activation="softmax",
            kernel_initializer=keras.initializers.GlorotUniform(seed=settings.seed + count + 1),
            dtype="float32",
        ),
    ]
    return keras.Sequential(layers, name="digits_classifier")


def _shifted(images, rng, max_shift):
    """Each ``[H, W, 1]`` image moved by a random ``(dy, dx)`` in ``[-max_shift, max_shift]²``; -1 fills in."""
    height, width = images.shape[1:3]
    padded = np.pad(images, ((0, 0), (max_shift,) * 2, (max_shift,) * 2, (0, 0)), constant_values=-1.0)
    out = np.empty_like(images)
    for i, (dy, dx) in enumerate(rng.integers(-max_shift, max_shift + 1, size=(len(images), 2))):
        top, left = max_shift - dy, max_shift - dx
        out[i] = padded[i, top : top + height, left : left + width]
    return out


def _train(settings):
    """The classifier trained on the train split: one ``fit`` over a pre-drawn, shuffled and shifted stream.

    Nothing global is touched (no global seeds): every random draw comes from
    ``settings.seed``. On CPU the ops are deterministic, so the same settings
    and versions give the same weights.
    """
    images, labels = load_digits(CLASSIFIER_SIZE, return_labels=True, split="train")
    rng = np.random.default_rng(settings.seed)
    stream, targets = [], []
    for _ in range(settings.epochs):
        order = rng.permutation(len(images))
        stream.append(_shifted(images[order], rng, settings.max_shift))
        targets.append(labels[order])
    steps = math.ceil(settings.epochs * len(images) / settings.batch_size)
    with tf.device("/CPU:0"):
        model = _build(settings)
        schedule = keras.optimizers.schedules.CosineDecay(settings.learning_rate, steps)
        model.compile(optimizer=keras.optimizers.Adam(schedule), loss="sparse_categorical_crossentropy")
        model.fit(
            np.concatenate(stream),
            np.concatenate(targets),
            batch_size=settings.batch_size,
            epochs=1,
            shuffle=False,
            verbose=0,
        )
    return model


def _save(path, model, settings, figures):
    """Write the weights and metadata to ``path`` atomically (a temporary file, then a rename)."""
    weights = model.get_weights()
    metadata = {
        "key": classifier_key(settings),
        "settings": dataclasses.asdict(settings),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "num_weights": len(weights),
        **figures,
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with replacing(path) as temporary, open(temporary, "wb") as file:
            np.savez(file, metadata=np.array(json.dumps(metadata)), **{f"w{i}": w for i, w in enumerate(weights)})
    except OSError as err:  # an unwritable cache costs a retraining next time, nothing more
        log.warning("cannot cache the digits classifier in %s: %s", path, err)


def _load(path, settings):
    with np.load(path, allow_pickle=False) as data:
        metadata = json.loads(str(data["metadata"]))
        weights = [data[f"w{i}"] for i in range(metadata["num_weights"])]
    if metadata["key"] != classifier_key(settings):
        raise ValueError(f"it holds the classifier {metadata['key']}, not {classifier_key(settings)}")
    with tf.device("/CPU:0"):
        model = _build(settings)
        model.set_weights(weights)  # a ValueError on a shape mismatch
    return _classifier(model, metadata, path, loaded=True)


# ----------------------------------------------------------------- scoring
def prepare_images(images, where="digits quality"):
    """Check images and bring them to the classifier: ``[N, 16, 16, 1]`` float32 in [-1, 1].

    Args:
        images: ``[N, S, S, C]`` float in [-1, 1], N ≥ 2, S ≥ 8, C 1 or 3
            (3 channels are averaged to grey); other sizes than 16 are
            resized with the data pipeline's antialiased bilinear filter.
        where: the caller, for messages.

    Returns:
        ``(prepared, S)``.

    Raises:
        ValueError: a dtype, rank, shape or count the measure cannot score.
        tf.errors.InvalidArgumentError: values outside [-1, 1] (or NaN).
    """
    images = check_images(images, (None, None, None), where, value_range=(-1.0, 1.0))
    count, height, width, channels = images.shape
    if channels not in (1, 3):
        raise ValueError(f"{where}: images have {channels} channels; expected 1 (grey) or 3 (averaged to grey)")
    if height != width or height < 8:
        raise ValueError(f"{where}: images are {height}×{width}; expected square images of at least 8×8")
    if count < 2:
        raise ValueError(f"{where}: {count} image(s); the Fréchet distance and KID need at least 2")
    images = tf.cast(images, tf.float32)
    if channels == 3:
        images = tf.reduce_mean(images, axis=-1, keepdims=True)
    if height != CLASSIFIER_SIZE:
        images = tf.image.resize(images, (CLASSIFIER_SIZE,) * 2, method="bilinear", antialias=True)
    return np.clip(images.numpy(), -1.0, 1.0), int(height)


def _check_num_reference(num_reference):
    if num_reference is None:
        return NUM_HELD_OUT
    if not isinstance(num_reference, int) or not 2 <= num_reference <= NUM_HELD_OUT:
        raise ValueError(f"num_reference={num_reference!r} must be an integer in [2, {NUM_HELD_OUT}] (or None: all)")
    return num_reference


@functools.lru_cache(maxsize=8)
def _held_out(classifier, image_size):
    """``(probabilities [797, 10], features [797, D])`` of the held-out split at ``image_size``."""
    prepared, _ = prepare_images(load_digits(image_size, split="held_out"))
    return classifier.classify(prepared)


def _score(classifier, prepared, image_size, num_reference):
    probabilities, features = classifier.classify(prepared)
    reference = _held_out(classifier, image_size)[1][:num_reference]
    counts = np.bincount(np.argmax(probabilities, axis=1), minlength=NUM_CLASSES)
    # Matrices of at most 1000 × 64: BLAS threads gain nothing, and on busy cores (TensorFlow's own threads, other
    # processes) their spinning made KID 5× slower.
    with threadpool_limits(limits=1, user_api="blas"):
        kid, kid_std = kernel_inception_distance(
            features, reference, num_subsets=KID_SUBSETS, subset_size=KID_SUBSET_SIZE, seed=0
        )
        distance = frechet_distance_from_features(features, reference)
    return {
        "num_images": len(prepared),
        "mean_confidence": float(np.mean(np.max(probabilities, axis=1))),
        "class_counts": counts.tolist(),
        "class_fractions": (counts / len(prepared)).tolist(),
        "frechet_distance": distance,
        "kid": kid,
        "kid_std": kid_std,
    }


def quality_report(images, num_reference=None):
    """Score images of digits with the classifier, against the held-out split.

    Args:
        images: ``[N, S, S, C]`` float in [-1, 1] (see ``prepare_images``).
        num_reference: held-out digits to compare with: the first
            ``num_reference`` of the 797, or None for all.

    Returns:
        dict: ``num_images``; ``mean_confidence`` (mean max-probability, in
        [0.1, 1]); ``class_counts`` (10 ints) and ``class_fractions`` (10
        floats summing to 1); ``frechet_distance`` (≥ 0) on the classifier's
        features; ``kid`` and ``kid_std`` (mean and standard deviation over
        ``KID_SUBSETS`` rounds).
    """
    num_reference = _check_num_reference(num_reference)
    prepared, image_size = prepare_images(images, "quality_report")
    return _score(digits_classifier(), prepared, image_size, num_reference)


def _floor_images(image_size, count):
    """``count`` train digits at ``image_size`` (a fixed random subset when fewer than the 1000)."""
    images = load_digits(image_size, split="train")
    if count >= len(images):
        return images
    rows = np.random.default_rng(REFERENCE_SEED).choice(len(images), count, replace=False)
    return images[np.sort(rows)]


def gaussian_baseline(image_size, count, seed=REFERENCE_SEED):
    """``count`` draws of a multivariate Gaussian fitted to the train digits' pixels at ``image_size``.

    Returns:
        ``[count, image_size, image_size, 1]`` float32, clipped to [-1, 1].
    """
    pixels = load_digits(image_size, split="train").reshape(DIGITS_TRAIN_SIZE, -1).astype(np.float64)
    mean, covariance = pixels.mean(axis=0), np.cov(pixels, rowvar=False)
    # The covariance is singular (fewer images than pixels, constant borders): eigh draws from it all the same.
    with threadpool_limits(limits=1, user_api="blas"):  # as in _score
        draws = np.random.default_rng(seed).multivariate_normal(mean, covariance, size=count, method="eigh")
    return np.clip(draws, -1.0, 1.0).astype(np.float32).reshape(count, image_size, image_size, 1)


@functools.lru_cache(maxsize=16)
def _reference_row(classifier, row, image_size, count, num_reference):
    images = _floor_images(image_size, count) if row == "floor" else gaussian_baseline(image_size, count)
    prepared, _ = prepare_images(images)
    return _score(classifier, prepared, image_size, num_reference)


def quality_table(images, num_reference=None):
    """The samples' ``quality_report`` beside the floor and the baseline, at the samples' size and count.

    Args:
        images: ``[N, S, S, C]`` float in [-1, 1] (see ``prepare_images``).
        num_reference: held-out digits to compare with (None: all 797).

    Returns:
        dict with the rows ``samples``, ``floor`` (min(N, 1000) train digits:
        all of them, or a fixed random subset) and ``baseline`` (N draws of
        ``gaussian_baseline``), each a ``quality_report``; and ``measure``,
        which describes the classifier and the comparison. The two reference
        rows are deterministic and computed once per process.
    """
    num_reference = _check_num_reference(num_reference)
    prepared, image_size = prepare_images(images, "quality_table")
    classifier = digits_classifier()
    report = {"samples": _score(classifier, prepared, image_size, num_reference)}
    for row in ROWS[1:]:
        report[row] = copy.deepcopy(_reference_row(classifier, row, image_size, len(prepared), num_reference))
    report["measure"] = {
        "image_size": image_size,
        "classifier": classifier.path.name,
        "classifier_held_out_accuracy": classifier.held_out_accuracy,
        "feature_dim": CLASSIFIER.feature_dim,
        "reference": f"the first {num_reference} digits of the held-out split (digits:held_out)",
        "num_reference": num_reference,
        # The confidence of real digits the classifier has not seen: the mark for the samples' confidence.
        "held_out_confidence": float(np.mean(np.max(_held_out(classifier, image_size)[0][:num_reference], axis=1))),
        "kid_subsets": KID_SUBSETS,
        "kid_subset_size": min(KID_SUBSET_SIZE, len(prepared), num_reference),
    }
    return report


def format_quality_table(report):
    """A text table of a ``quality_table`` report: one line per row, and a header that says what was measured."""
    measure = report["measure"]
    lines = [
        f"digits quality at {measure['image_size']}×{measure['image_size']}: a CNN classifier (held-out accuracy "
        f"{measure['classifier_held_out_accuracy']:.1%}); FD and KID on its {measure['feature_dim']}-d features "
        f"against {measure['num_reference']} held-out digits (lower is better); held-out digits' confidence "
        f"{measure['held_out_confidence']:.3f}",
        f"{'row':<9}{'images':>7}{'confidence':>12}{'FD':>10}{'KID':>11}{'min class':>11}{'max class':>11}",
    ]
    for row in (*ROWS, GENERATOR_ROW):
        if row not in report:
            continue
        values = report[row]
        fractions = values["class_fractions"]
        lines.append(
            f"{row:<9}{values['num_images']:>7}{values['mean_confidence']:>12.3f}{values['frechet_distance']:>10.3f}"
            f"{values['kid']:>11.5f}{min(fractions):>11.1%}{max(fractions):>11.1%}"
        )
    if GENERATOR_ROW in report:
        lines.append("generator: the model's generator alone, G(z) with z from the sampler's prior (no Langevin step)")
    lines.append("floor: real train digits; baseline: a Gaussian fitted to the train digits' pixels")
    return "\n".join(lines)
