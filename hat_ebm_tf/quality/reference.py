"""What the quality report compares samples with: a data set's train and held-out images, and its networks.

``reference_for(source)`` reads, for the source a model trained on, the
images it trained on (a fixed subset of at most ``MAX_TRAIN``) and the
held-out images it never saw (at most ``MAX_HELD_OUT``), both at the model's
size and as the data pipeline gives them (``DataSource.train_and_held_out``
says which images those are). The label-free encoder (FD, KID), the copying
check and the Gaussian baseline learn from the train images; FD and KID
compare with the held-out ones. Labelled data sets (digits, glyphs) add their
classifier.
"""

import dataclasses
import functools

import numpy as np
from threadpoolctl import threadpool_limits

from hat_ebm_tf.data import read_source
from hat_ebm_tf.errors import DataError
from hat_ebm_tf.quality.classifier import LABELLED_SETS, classifier_for
from hat_ebm_tf.quality.encoder import quality_encoder

MAX_TRAIN = 5000
MAX_HELD_OUT = 2000
MIN_IMAGES = 2
# The held-out images nearer to a training image than this share of held-out images are count as copies.
COPY_QUANTILE = 0.05


@dataclasses.dataclass(frozen=True, eq=False)
class QualityReference:
    """A data set's train and held-out images at the model's size, and the networks the report scores with.

    Attributes:
        name: the data source, as configs name it.
        train: ``[N, S, S, C]`` float32 in [-1, 1]: images the model trained on.
        held_out: ``[M, S, S, C]`` float32 in [-1, 1], disjoint from them.
        labelled: the data set's ``LabelledSet`` name (``digits``, ``glyphs``), or None.
        cache: the cache directory of the encoder and the classifier (None: ``cache_dir()``).
    """

    name: str
    train: np.ndarray
    held_out: np.ndarray
    labelled: str | None = None
    cache: str | None = None

    def __post_init__(self):
        for what in ("train", "held_out"):
            images = getattr(self, what)
            if images.ndim != 4 or len(images) < MIN_IMAGES:
                raise DataError(
                    f"quality reference {self.name}: {len(images)} {what.replace('_', '-')} images; the quality "
                    f"report needs at least {MIN_IMAGES}"
                )
        if self.train.shape[1:] != self.held_out.shape[1:]:
            raise DataError(
                f"quality reference {self.name}: train images {list(self.train.shape[1:])} and held-out images "
                f"{list(self.held_out.shape[1:])} differ"
            )

    @property
    def image_shape(self):
        """``(S, S, C)``."""
        return tuple(self.train.shape[1:])

    @functools.cached_property
    def encoder(self):
        """The data set's label-free ``Encoder`` (trained on ``train`` and cached on first use)."""
        return quality_encoder(self.train, self.cache)

    @functools.cached_property
    def held_out_features(self):
        return self.encoder.features(self.held_out)

    @functools.cached_property
    def classifier(self):
        """The labelled set's ``Classifier``, or None."""
        return None if self.labelled is None else classifier_for(self.labelled, self.cache)

    @functools.cached_property
    def held_out_classified(self):
        """``(probabilities, features)`` of the held-out images by the classifier."""
        return self.classifier.classify(self.held_out)

    def prepare(self):
        """Read or train the report's networks and score the held-out images now (later calls only look them up)."""
        _ = self.held_out_features, self.copy_threshold
        if self.classifier is not None:
            _ = self.held_out_classified
        return self

    @functools.cached_property
    def _flat_train(self):
        return self.train.reshape(len(self.train), -1)

    def nearest_train_distance(self, images):
        """``[N]`` pixel-space L2 distance of each of ``images`` to its nearest training image."""
        flat = np.asarray(images, np.float32).reshape(len(images), -1)
        train = self._flat_train
        train_norms = np.einsum("ij,ij->i", train, train)
        out = np.empty(len(flat))
        with threadpool_limits(limits=1, user_api="blas"):  # small matrices: BLAS threads only spin on busy cores
            for start in range(0, len(flat), 256):
                part = flat[start : start + 256]
                squared = np.einsum("ij,ij->i", part, part)[:, None] + train_norms[None] - 2.0 * part @ train.T
                out[start : start + 256] = np.sqrt(np.clip(squared.min(axis=1), 0.0, None))
        return out

    @functools.cached_property
    def copy_threshold(self):
        """The ``COPY_QUANTILE`` quantile of the held-out images' distances to their nearest training image."""
        return float(np.quantile(self.nearest_train_distance(self.held_out), COPY_QUANTILE))


def _subset(images, count):
    """At most ``count`` of ``images``: all of them, or a fixed, evenly spread subset in order."""
    if len(images) <= count:
        return images
    return images[np.linspace(0, len(images) - 1, count).round().astype(int)]


@functools.lru_cache(maxsize=4)
def reference_for(source, cache=None):
    """The ``QualityReference`` of a model trained on ``source`` (a ``DataSource``; kept for the process).

    Args:
        source: the training source as configured (``DataSource``), at the model's size and channels.
        cache: cache directory of the report's networks (None: ``cache_dir()``).

    Raises:
        DataError: the source cannot be read, or gives fewer than two train or held-out images.
    """
    train_source, held_out_source = source.train_and_held_out()
    train_source = dataclasses.replace(train_source, random_crop=None, flip=False)
    train = _subset(read_source(train_source), MAX_TRAIN)
    held_out = _subset(read_source(held_out_source), MAX_HELD_OUT)
    labelled = source.kind if source.kind in LABELLED_SETS else None
    return QualityReference(source.describe(), train, held_out, labelled, cache)
