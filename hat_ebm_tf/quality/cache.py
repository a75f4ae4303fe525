"""The cache of the quality measures' trained networks: weight files under ``$HAT_EBM_CACHE``, keyed by a hash.

The digits and glyph classifiers and the data sets' contrastive encoders are
trained deterministically on first use and kept as ``.npz`` weight files, so
that later runs read them in a fraction of a second. A file name holds a hash
of everything that determines the weights (settings, training data, the
TensorFlow and Keras versions); a file that cannot be read is trained again
and replaced, and a cache that cannot be written costs a retraining next
time, nothing more.
"""

import dataclasses
import hashlib
import json
import logging
import os
import zipfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from hat_ebm_tf.features import inception_cache_path
from hat_ebm_tf.outputs import replacing

CACHE_ENV = "HAT_EBM_CACHE"
# What a damaged or foreign cache file raises when read.
UNREADABLE = (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile)
log = logging.getLogger("hat_ebm_tf.quality")


@dataclasses.dataclass(frozen=True)
class FitSettings:
    """How a quality network trains: the settings its weights depend on that every kind of network has.

    Attributes:
        epochs: passes over the train images.
        batch_size: images per step.
        learning_rate: Adam's initial rate, cosine-decayed to 0 over the run.
        seed: seed of the initialisation and of every draw of the training.
        revision: raised whenever the training code changes.
    """

    epochs: int
    batch_size: int
    learning_rate: float
    seed: int = 0
    revision: int = 1


def cache_dir():
    """``$HAT_EBM_CACHE``, else the package's cache directory (``~/.cache/hat_ebm_tf``, where Inception is kept)."""
    return Path(os.environ.get(CACHE_ENV) or inception_cache_path().parent)


def cache_key(**parts):
    """16 hex digits naming the network that ``parts`` (JSON-able) train with this TensorFlow and Keras."""
    blob = json.dumps({**parts, "tensorflow": tf.__version__, "keras": keras.__version__}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def array_digest(array):
    """The SHA-256 hex digest of an array's shape, dtype and bytes (a key part naming training data)."""
    array = np.ascontiguousarray(array)
    digest = hashlib.sha256(f"{array.shape}{array.dtype}".encode())
    digest.update(array.tobytes())
    return digest.hexdigest()


def save_weights(path, weights, metadata, what):
    """Write ``weights`` (list of arrays) and JSON ``metadata`` to ``path`` atomically; warn if it cannot be written.

    Args:
        path: the ``.npz`` file.
        weights: ``model.get_weights()``.
        metadata: JSON-able dict, read back by ``load_weights``.
        what: the network, for the warning (``"the digits classifier"``).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with replacing(path) as temporary, open(temporary, "wb") as file:
            record = {**metadata, "num_weights": len(weights)}
            np.savez(file, metadata=np.array(json.dumps(record)), **{f"w{i}": w for i, w in enumerate(weights)})
    except OSError as err:
        log.warning("cannot cache %s in %s: %s", what, path, err)


def load_weights(path):
    """``(weights, metadata)`` of a file written by ``save_weights``.

    Raises:
        One of ``UNREADABLE`` for a missing, damaged or foreign file.
    """
    with np.load(path, allow_pickle=False) as data:
        metadata = json.loads(str(data["metadata"]))
        weights = [data[f"w{i}"] for i in range(metadata["num_weights"])]
    return weights, metadata
