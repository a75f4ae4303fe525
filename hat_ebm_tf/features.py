# Feature extractors for FID and KID. The Inception network and its use follow
# the TTUR protocol (Heusel et al. 2017, github.com/bioinf-jku/TTUR, fid.py):
# the 2015-12-05 Inception graph, uint8 pixels fed to `ExpandDims:0`, features
# read from `pool_3:0`. Independent code.
"""Images → feature vectors for FID/KID: the TTUR Inception graph, or any Keras model or SavedModel.

Every extractor takes uint8 images ``[N, H, W, C]`` in [0, 255] (C = 1 or
3; single-channel images are repeated to 3 channels for 3-channel
networks), runs them in batches, and returns float32 features ``[N, D]``.
Networks receive the pixels as float32 values in [0, 255], as the Inception
graph does; a pluggable network rescales them itself.
"""

import hashlib
import os
import tarfile
import zipfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from hat_ebm_tf.errors import ModelFileError
from hat_ebm_tf.validation import check_image_array

INCEPTION_URL = "https://download.tensorflow.org/models/image/imagenet/inception-2015-12-05.tgz"
INCEPTION_FILE = "classify_image_graph_def.pb"
INCEPTION_ENV = "HAT_EBM_INCEPTION"
INCEPTION_INPUT = "ExpandDims:0"
INCEPTION_OUTPUT = "pool_3:0"
DEFAULT_BATCH_SIZE = 50  # TTUR's default; the Inception graph resizes every image to 299×299


class InceptionNotFoundError(ModelFileError, FileNotFoundError):
    """The TTUR Inception graph file is not in any place searched; the message says where to put it."""


class FeatureExtractor:
    """uint8 images → float32 features ``[N, D]``, in batches.

    Args:
        fn: ``[B, H, W, C]`` float32 pixels in [0, 255] → ``[B, D]`` or
            ``[B, 1, 1, D]`` features (a tensor or array).
        info: JSON-serialisable description for records (kind, path, sha256).
        channels: channels the network takes (3 for Inception), or None to
            pass the images' own channel count.
        batch_size: images per call of ``fn``.

    Call:
        images: ``[N, H, W, C]`` uint8 in [0, 255], C = 1 or 3.

    Returns:
        ``[N, D]`` float32 features.
    """

    def __init__(self, fn, info, channels=None, batch_size=DEFAULT_BATCH_SIZE):
        if not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"FeatureExtractor: batch_size={batch_size!r} must be a positive integer")
        self.fn = fn
        self.info = info
        self.channels = channels
        self.batch_size = batch_size

    def __call__(self, images):
        images = check_image_array(images, f"feature extractor {self.info['kind']}", pixels_only=True)
        if self.channels == 3 and images.shape[-1] == 1:
            # TTUR feeds RGB; a grey image is the same grey level in each channel.
            images = np.repeat(images, 3, axis=-1)
        elif self.channels is not None and images.shape[-1] != self.channels:
            raise ValueError(
                f"feature extractor {self.info['kind']}: takes {self.channels}-channel images, "
                f"got {images.shape[-1]} channels"
            )
        batches = [self._features(images[i : i + self.batch_size]) for i in range(0, len(images), self.batch_size)]
        return np.concatenate(batches)

    def _features(self, images):
        features = np.asarray(self.fn(tf.constant(images, tf.float32)), dtype=np.float32)
        if features.ndim == 4 and features.shape[1:3] == (1, 1):  # pooled maps, e.g. Inception's pool_3
            features = features[:, 0, 0]
        if features.ndim != 2 or len(features) != len(images):
            raise ValueError(
                f"feature extractor {self.info['kind']}: expected features [{len(images)}, D] "
                f"(or [{len(images)}, 1, 1, D]), got {list(features.shape)}"
            )
        return features


def path_sha256(path):
    """SHA-256 hex digest of a file, or of a directory (relative paths and contents of its files, in order)."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        with open(file, "rb") as stream:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


# -------------------------------------------------------------- Inception
def inception_cache_path():
    """``$XDG_CACHE_HOME/hat_ebm_tf/classify_image_graph_def.pb`` (default ``~/.cache/hat_ebm_tf/…``)."""
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "hat_ebm_tf" / INCEPTION_FILE


def _graph_file_in(path):
    """The graph file at ``path``: the file itself, or ``classify_image_graph_def.pb`` in a directory."""
    path = Path(path).expanduser()
    return path / INCEPTION_FILE if path.is_dir() else path


def find_inception(path=None):
    """Locate the TTUR Inception graph.

    Lookup order: ``path`` if given (the ``.pb``, a directory holding it, or
    the downloaded ``.tgz``); otherwise ``$HAT_EBM_INCEPTION`` (same forms),
    then the cache file ``inception_cache_path()``.

    Returns:
        ``Path`` of the ``.pb`` or ``.tgz`` file.

    Raises:
        InceptionNotFoundError: naming every place searched, where the file
            comes from and where to put it.
    """
    env = os.environ.get(INCEPTION_ENV)
    if path is not None:
        candidates = [_graph_file_in(path)]
    else:
        candidates = ([_graph_file_in(env)] if env else []) + [inception_cache_path()]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    searched = "; ".join(os.fspath(c) for c in candidates)
    if path is None and not env:
        searched += f"; ${INCEPTION_ENV} is not set"
    cache = inception_cache_path()
    raise InceptionNotFoundError(
        f"the TTUR Inception graph {INCEPTION_FILE} was not found (searched: {searched}). "
        f"It is in the 2015-12-05 Inception tarball {INCEPTION_URL}, which TTUR's fid.py downloads; nothing "
        f"is downloaded here. On a machine with internet run `mkdir -p {cache.parent} && curl -L "
        f"{INCEPTION_URL} | tar -xz -C {cache.parent} {INCEPTION_FILE}`, or put the file (or the .tgz) "
        f"anywhere and set ${INCEPTION_ENV} to it or pass --features inception:PATH"
    )


def _read_graph_def(path):
    if tarfile.is_tarfile(path):
        with tarfile.open(path) as archive:
            member = next((m for m in archive.getmembers() if Path(m.name).name == INCEPTION_FILE), None)
            if member is None:
                raise ModelFileError(f"archive {os.fspath(path)!r} holds no {INCEPTION_FILE}")
            data = archive.extractfile(member).read()
    else:
        data = Path(path).read_bytes()
    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(data)
    except Exception as err:  # protobuf raises its own DecodeError
        raise ModelFileError(f"{os.fspath(path)!r} is not a TensorFlow GraphDef: {err}") from err
    return graph_def


def inception_features(path=None, batch_size=DEFAULT_BATCH_SIZE):
    """The TTUR FID network: Inception (2015-12-05) ``pool_3`` features, ``[N, 2048]``.

    The GraphDef is imported into a wrapped TF2 function with its
    ``ExpandDims:0`` tensor (the batch of float pixels in [0, 255], after the
    graph's JPEG decoder) replaced by the function's input, as TTUR feeds it;
    the graph itself resizes to 299×299 (bilinear) and scales to [-1, 1]. The
    graph was written for one image at a time, and may carry static batch-1
    shapes (``_output_shapes``) that would pin ``pool_3`` to batch 1. TTUR
    patches the imported tensors' shapes to a free batch dimension; here the
    recorded shapes are dropped before import, so shape inference starts from
    the input's free batch dimension instead.

    Args:
        path: the graph file, a directory holding it, or the ``.tgz``; None
            looks in ``$HAT_EBM_INCEPTION`` and the cache (``find_inception``).
        batch_size: images per network call.

    Returns:
        ``FeatureExtractor`` whose ``info`` records the file and its sha256.

    Raises:
        InceptionNotFoundError: the file is in none of the places searched.
        ModelFileError: the file is not a GraphDef with ``ExpandDims:0`` and
            ``pool_3:0``.
    """
    file = find_inception(path)
    graph_def = _read_graph_def(file)
    nodes = {node.name: node for node in graph_def.node}
    missing = [name for name in (INCEPTION_INPUT, INCEPTION_OUTPUT) if name.split(":")[0] not in nodes]
    if missing:
        raise ModelFileError(f"graph {os.fspath(file)!r} has no tensors {missing}: it is not the TTUR Inception graph")
    for node in graph_def.node:
        if "_output_shapes" in node.attr:
            del node.attr["_output_shapes"]
    input_dtype = tf.as_dtype(nodes[INCEPTION_INPUT.split(":")[0]].attr["T"].type)

    def imported(images):
        (output,) = tf.compat.v1.import_graph_def(
            graph_def, input_map={INCEPTION_INPUT: images}, return_elements=[INCEPTION_OUTPUT], name="inception"
        )
        return output

    wrapped = tf.compat.v1.wrap_function(imported, [tf.TensorSpec([None, None, None, 3], input_dtype)])
    # Keep only the ops from the input to pool_3 (not the JPEG decoder, nor the
    # classifier head, whose reshape is fixed to batch 1).
    network = wrapped.prune(wrapped.inputs[0], wrapped.outputs[0])
    info = {"kind": "inception-2015-12-05 pool_3 (TTUR)", "path": os.fspath(file), "sha256": path_sha256(file)}
    return FeatureExtractor(lambda images: network(tf.cast(images, input_dtype)), info, 3, batch_size)


# -------------------------------------------------------------- pluggable
def _channels_of(shape):
    """The last dimension of an input shape, or None when unknown."""
    return None if shape is None or len(shape) == 0 or shape[-1] is None else int(shape[-1])


def features_from_keras(model, batch_size=DEFAULT_BATCH_SIZE, info=None):
    """A ``FeatureExtractor`` from a Keras model mapping float32 pixels in [0, 255] to ``[B, D]`` features.

    Args:
        model: ``keras.Model``, ``[B, H, W, C]`` → ``[B, D]`` (or ``[B, 1, 1, D]``).
        batch_size: images per call.
        info: record description (default: the model's name).
    """
    shape = model.inputs[0].shape if getattr(model, "inputs", None) else None
    info = info or {"kind": f"keras model {model.name}"}
    return FeatureExtractor(lambda images: model(images, training=False), info, _channels_of(shape), batch_size)


def features_from_saved_model(path, batch_size=DEFAULT_BATCH_SIZE):
    """A ``FeatureExtractor`` from a SavedModel whose ``serving_default`` signature maps images to features.

    The signature must take one tensor, float32 pixels ``[B, H, W, C]`` in
    [0, 255], and return one ``[B, D]`` (or ``[B, 1, 1, D]``) tensor; Keras'
    ``model.export(path)`` writes such a signature.
    """
    loaded = tf.saved_model.load(os.fspath(path))
    signature = loaded.signatures.get("serving_default")
    if signature is None:
        raise ModelFileError(
            f"SavedModel {os.fspath(path)!r} has no serving_default signature (it has {sorted(loaded.signatures)})"
        )
    inputs = signature.structured_input_signature[1]
    outputs = signature.structured_outputs
    if len(inputs) != 1 or len(outputs) != 1:
        raise ModelFileError(
            f"SavedModel {os.fspath(path)!r}: serving_default must take one image tensor and return one feature "
            f"tensor, it takes {sorted(inputs)} and returns {sorted(outputs)}"
        )
    (input_name, spec), (output_name,) = next(iter(inputs.items())), outputs

    def run(images):
        return signature(**{input_name: tf.cast(images, spec.dtype)})[output_name]

    info = {"kind": "savedmodel", "path": os.fspath(path), "sha256": path_sha256(path)}
    channels = _channels_of(spec.shape.as_list() if spec.shape.rank is not None else None)
    return FeatureExtractor(run, info, channels, batch_size)


def load_feature_extractor(spec="inception", batch_size=DEFAULT_BATCH_SIZE):
    """A feature extractor from its command-line form.

    Args:
        spec: ``inception`` (the graph from ``$HAT_EBM_INCEPTION`` or the
            cache), ``inception:PATH``, a ``.keras`` file, or a SavedModel
            directory.
        batch_size: images per network call.

    Returns:
        ``FeatureExtractor``.
    """
    if spec == "inception" or spec.startswith("inception:"):
        return inception_features(spec.partition(":")[2] or None, batch_size)
    path = Path(spec)
    if not path.exists():
        raise ModelFileError(f"feature extractor {spec!r}: no such file or directory")
    try:
        if path.is_file() and path.suffix == ".keras":
            model = keras.saving.load_model(path, compile=False)
            info = {"kind": f"keras model {model.name}", "path": os.fspath(path), "sha256": path_sha256(path)}
            return features_from_keras(model, batch_size, info)
        if (path / "saved_model.pb").is_file():
            return features_from_saved_model(path, batch_size)
    except (ValueError, OSError, KeyError, TypeError, zipfile.BadZipFile, tf.errors.OpError) as err:
        if isinstance(err, ModelFileError):
            raise
        raise ModelFileError(f"feature extractor {spec!r}: cannot load it: {err}") from err
    raise ModelFileError(
        f"feature extractor {spec!r}: not 'inception', 'inception:PATH', a .keras file or a SavedModel directory"
    )
