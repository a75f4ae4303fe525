# Input data of Hat EBM. Preprocessing follows the reference implementation
# (Hill et al., NeurIPS 2022, github.com/point0bar1/hat-ebm): uint8 → [-1, 1],
# centre crop and antialiased resize, optional random resized crop and flip;
# the data_epsilon noise is added in the training step. Independent code.
"""Image sources (``hat_ebm_tf.sources``: TFDS, folders, arrays, the embedded digits) read into tf.data pipelines.

Every pipeline yields image tensors only, ``[B, H, W, C]`` float32 in
[-1, 1], never (image, label) tuples: Keras 3 under
``MultiWorkerMirroredStrategy`` needs single-tensor elements (keras #20585).
"""

import os
import zipfile
from pathlib import Path

import numpy as np
import tensorflow as tf

from hat_ebm_tf import offline_sets
from hat_ebm_tf.errors import DataError
from hat_ebm_tf.sources import DIGITS_SPLITS, HOLD_OUT_EVERY, scan_folder, split_rows
from hat_ebm_tf.validation import check_image_array


# ------------------------------------------------------------------ pixels
def uint8_to_model_range(images):
    """uint8 pixels ``[..., C]`` in [0, 255] → float32 in [-1, 1]."""
    return tf.cast(images, tf.float32) / 127.5 - 1.0


def model_range_to_uint8(images):
    """Float images in [-1, 1] (values outside, ±inf too, are clipped) → uint8 in [0, 255].

    Raises:
        ValueError: the images hold NaN (e.g. a diverged model's samples), which has no pixel value.
    """
    images = np.asarray(images, dtype=np.float32)
    nan = int(np.count_nonzero(np.isnan(images)))
    if nan:
        raise ValueError(f"model_range_to_uint8: {nan} of {images.size} image values are NaN: they have no pixel value")
    return np.clip(np.round((images + 1.0) * 127.5), 0, 255).astype(np.uint8)


def center_crop(image):
    """The largest centred square of ``[H, W, C]``."""
    shape = tf.shape(image)
    side = tf.minimum(shape[0], shape[1])
    top, left = (shape[0] - side) // 2, (shape[1] - side) // 2
    return image[top : top + side, left : left + side]


def random_resized_crop(image, scale, ratio, seed):
    """A random crop of ``[H, W, C]`` with area fraction in ``scale`` and aspect ratio in ``ratio``.

    Args:
        image: ``[H, W, C]``.
        scale: ``(min, max)`` fraction of the image area.
        ratio: ``(min, max)`` width / height.
        seed: ``[2]`` int seed of the stateless draw.
    """
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image),
        bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
        seed=seed,
        area_range=scale,
        aspect_ratio_range=ratio,
        min_object_covered=0.0,
        use_image_if_no_bounding_boxes=True,
    )
    return tf.slice(image, begin, size)


def _to_model(image, source, seed=None):
    """One uint8 ``[H, W, C]`` image → float32 ``[S, S, channels]`` in [-1, 1]."""
    if seed is not None and source.random_crop is not None:
        low, high, rmin, rmax = source.random_crop
        image = random_resized_crop(image, (low, high), (rmin, rmax), seed)
    else:
        image = center_crop(image)
    if source.channels == 1 and image.shape[-1] == 3:
        image = tf.image.rgb_to_grayscale(image)
    elif source.channels == 3 and image.shape[-1] == 1:
        image = tf.image.grayscale_to_rgb(image)
    size = (source.image_size, source.image_size)
    image = tf.image.resize(tf.cast(image, tf.float32), size, method="bilinear", antialias=True)
    image = tf.clip_by_value(image / 127.5 - 1.0, -1.0, 1.0)
    if seed is not None and source.flip:
        image = tf.image.stateless_random_flip_left_right(image, seed=seed + 1)
    return tf.ensure_shape(image, [*size, source.channels])


# ----------------------------------------------------------------- sources
def load_digits(image_size=16, return_labels=False, split="train"):
    """scikit-learn's bundled 8×8 digits (UCI optdigits test set), offline.

    The 4-bit grey levels (0..16) are mapped to [-1, 1] and resized with an
    antialiased bilinear filter to ``image_size``. The split is fixed: the
    first 1000 digits train (models and the quality classifier), the other
    797 are held out for evaluation.

    Args:
        image_size: output height and width (≥ 8).
        return_labels: also return the ``[N]`` int labels 0..9.
        split: ``train`` (N = 1000), ``held_out`` (N = 797), its alternate
            rows ``calibration`` (N = 399) and ``test`` (N = 398), or ``all`` (N = 1797).

    Returns:
        ``[N, image_size, image_size, 1]`` float32 in [-1, 1] (and labels).
    """
    from sklearn.datasets import load_digits as sklearn_digits  # scikit-learn (heavy): loaded only for the digits

    if not isinstance(image_size, int) or image_size < 8:
        raise ValueError(f"load_digits: image_size={image_size!r} must be an integer >= 8")
    name, sliced = split_rows(split)
    if name not in DIGITS_SPLITS:
        raise ValueError(f"load_digits: split={split!r}: expected one of {list(DIGITS_SPLITS)}")
    bunch = sklearn_digits()
    rows = np.arange(len(bunch.images))[DIGITS_SPLITS[name]][sliced]
    images = bunch.images[rows].astype(np.float32)[..., None] / 8.0 - 1.0
    if image_size != 8:
        images = tf.image.resize(images, (image_size, image_size), method="bilinear", antialias=True)
        images = np.clip(images.numpy(), -1.0, 1.0)
    return (images, bunch.target[rows].astype(np.int64)) if return_labels else images


def _tfds_images(source):
    import tensorflow_datasets as tfds  # heavy (seconds): loaded only for a tfds source

    builder = tfds.builder(source.name, data_dir=source.data_dir)
    key = next(k for k, f in builder.info.features.items() if isinstance(f, tfds.features.Image))
    try:
        # Encoded bytes: skipping ahead on resume then costs reads, not decodes.
        ds = builder.as_dataset(split=source.split, shuffle_files=False, decoders={key: tfds.decode.SkipDecoding()})
    except AssertionError as err:  # TFDS asserts when the data is not prepared
        manual = getattr(builder, "MANUAL_DOWNLOAD_INSTRUCTIONS", None)
        how = (
            f"it needs a manual download into {builder.data_dir_root}/downloads/manual/ "
            f"({' '.join(manual.split())}), then `tfds build {source.name} --data_dir {builder.data_dir_root}`"
            if manual
            else f"prepare it on a machine with internet: `tfds build {source.name} --data_dir {builder.data_dir_root}`"
            ", then copy the directory here"
        )
        raise DataError(
            f"TFDS builder {source.name!r} is not prepared in {builder.data_dir!r} (nothing is downloaded at "
            f"run time): {how}"
        ) from err
    return ds.map(lambda example: example[key], num_parallel_calls=tf.data.AUTOTUNE)


def _decode(encoded):
    """PNG/JPEG bytes → uint8 ``[H, W, 3]``."""
    return tf.ensure_shape(tf.io.decode_image(encoded, channels=3, expand_animations=False), [None, None, 3])


def read_array_file(path):
    """The array of a ``.npy`` file, or the array ``images`` of a ``.npz`` file; pickles are refused.

    Raises:
        DataError: a missing or unreadable file, or a ``.npz`` without ``images``.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"array file {os.fspath(path)!r} does not exist")
    with path.open("rb") as file:
        magic = file.read(6)
    if not magic.startswith((b"\x93NUMPY", b"PK")):  # NumPy's own, and zip's, file signatures
        raise DataError(f"array file {os.fspath(path)!r} is neither a .npy nor a .npz file")
    try:
        loaded = np.load(path)  # allow_pickle=False: a file of objects fails here
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            return loaded
        with loaded:
            if "images" not in loaded.files:
                raise DataError(f"array file {os.fspath(path)!r} has no array 'images' (arrays: {loaded.files})")
            return loaded["images"]
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        if isinstance(err, DataError):
            raise
        raise DataError(f"cannot read array file {os.fspath(path)!r} as .npy or .npz: {err}") from err


def load_array(path):
    """``[N, H, W, C]`` images from a ``.npy`` file or a ``.npz`` file (array ``images``), as pixel values.

    Returns:
        The uint8 pixels of a uint8 file; the float32 values ``(x + 1) · 127.5``
        in [0, 255] of a file of floats ``x`` in [-1, 1], so that both go
        through the same crop and resize (``_to_model``) back to [-1, 1].

    Raises:
        DataError: the file is missing or unreadable, or holds no such images.
    """
    images = check_image_array(read_array_file(path), f"array file {os.fspath(path)!r}", error=DataError)
    return images if images.dtype == np.uint8 else (images + np.float32(1.0)) * np.float32(127.5)


def _raw_elements(source):
    """``(elements, decode)``: a source's cheap undecoded elements and their decoder to uint8 ``[H, W, C]``.

    The elements are an in-memory array (images, or file paths) for every
    source but TFDS, which streams them as a ``tf.data.Dataset``.
    """
    if source.kind == "tfds":
        return _tfds_images(source), _decode
    if source.kind == "folder":
        files = np.array([os.fspath(f) for f in scan_folder(source.name)])
        return files, lambda path: _decode(tf.io.read_file(path))
    if source.kind == "array":
        return load_array(source.name), tf.identity
    if source.kind in ("glyphs", "photo-patches"):
        name, rows = split_rows(source.split)
        images = offline_sets.glyphs(name) if source.kind == "glyphs" else offline_sets.photo_patches(name)
        return np.asarray(images[rows]), tf.identity
    return model_range_to_uint8(load_digits(8, split=source.split)), tf.identity


def _held_out_rows(elements, hold_out):
    """The rows of ``elements`` (an array, or a streamed dataset) that ``hold_out`` keeps (``DataSource.hold_out``)."""
    if hold_out is None:
        return elements
    held_out = hold_out == "held_out"
    if isinstance(elements, tf.data.Dataset):
        kept = elements.enumerate().filter(lambda i, _: tf.equal(i % HOLD_OUT_EVERY == HOLD_OUT_EVERY - 1, held_out))
        return kept.map(lambda _, element: element)
    rows = np.arange(len(elements))
    return elements[(rows % HOLD_OUT_EVERY == HOLD_OUT_EVERY - 1) == held_out]


def _permuted_epochs(elements, seed):
    """Endless stream of ``elements``, each epoch in the stateless permutation keyed on ``(seed, epoch)``.

    ``Dataset.shuffle`` re-derives its seed when a ``tf.distribute`` strategy
    copies the pipeline, so a distributed run would see other batches than a
    one-device run; an index permutation is the same in every context.
    """
    table = tf.convert_to_tensor(elements)
    size = int(table.shape[0])
    seed = tf.constant(seed, tf.int64)

    def epoch(index):
        order = tf.random.experimental.stateless_shuffle(tf.range(size, dtype=tf.int64), seed=tf.stack([seed, index]))
        return tf.data.Dataset.from_tensor_slices(order)

    return tf.data.Dataset.range(2**62).flat_map(epoch).map(lambda i: tf.gather(table, i))


# ---------------------------------------------------------------- pipelines
def image_dataset(source, batch_size, training=True, seed=0, input_context=None, start_step=0):
    """The tf.data pipeline of a source: ``[batch_size, S, S, C]`` float32 in [-1, 1].

    Training pipelines shuffle (seeded), repeat, apply the random crop/flip,
    batch with drop-remainder and prefetch; evaluation pipelines read once in
    order and keep the remainder. The training stream is a pure function of
    ``seed``: ``start_step`` skips the first ``start_step`` batches (before
    decoding), so a resumed run sees exactly the images an uninterrupted run
    would, with the same augmentations.

    Args:
        source: ``DataSource``.
        batch_size: batch size of this pipeline (per replica under a strategy).
        training: training (True) or evaluation (False) pipeline.
        seed: seed of shuffling and augmentation.
        input_context: ``tf.distribute.InputContext``: shard the input by
            pipeline id, so workers read disjoint images.
        start_step: batches of this pipeline already consumed (resume).

    Raises:
        DataError: a training source (or shard) with fewer images than a
            batch, or none (an endless stream of empty epochs would never
            yield).
    """
    elements, decode = _raw_elements(source)
    elements = _held_out_rows(elements, source.hold_out)
    sharded = input_context is not None and input_context.num_input_pipelines > 1
    if isinstance(elements, tf.data.Dataset):
        ds = elements.shard(input_context.num_input_pipelines, input_context.input_pipeline_id) if sharded else elements
        count = int(ds.cardinality())  # TFDS knows its split sizes; negative when unknown
    else:
        if sharded:
            elements = elements[input_context.input_pipeline_id :: input_context.num_input_pipelines]
        count = len(elements)
    if training and 0 <= count < batch_size:
        # As array_dataset: a batch of repeated images would train on copies.
        shard = " in this input pipeline's shard" if sharded else ""
        raise DataError(f"data source {source.describe()} holds {count} images{shard}; a batch needs {batch_size}")
    if isinstance(elements, tf.data.Dataset):
        if training:  # streamed: a seeded shuffle buffer
            ds = ds.shuffle(10_000, seed=seed, reshuffle_each_iteration=True).repeat()
    else:
        ds = _permuted_epochs(elements, seed) if training else tf.data.Dataset.from_tensor_slices(elements)
    if training:
        consumed = int(start_step) * int(batch_size)
        ds = ds.skip(consumed)
        # Each element's augmentation seed is (seed, element index): stateless and reproducible.
        ds = tf.data.Dataset.zip((ds, tf.data.Dataset.counter(start=consumed)))
        ds = ds.map(
            lambda raw, i: _to_model(decode(raw), source, tf.stack([tf.cast(seed, tf.int64), i])),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    else:
        ds = ds.map(lambda raw: _to_model(decode(raw), source), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.batch(batch_size, drop_remainder=training)
    return ds.prefetch(tf.data.AUTOTUNE)


def read_source(source, limit=None, batch_size=256):
    """A source's images in memory, in order, as the evaluation pipeline gives them (``image_dataset``).

    Args:
        source: ``DataSource``.
        limit: read at most this many images (None: all).
        batch_size: images per pipeline batch.

    Returns:
        ``[N, S, S, C]`` float32 in [-1, 1].

    Raises:
        DataError: the source holds no images.
    """
    ds = image_dataset(source, batch_size, training=False)
    if limit is not None:
        ds = ds.unbatch().take(limit).batch(batch_size)
    batches = [batch.numpy() for batch in ds]
    if not batches:
        raise DataError(f"data source {source.describe()} holds no images")
    return np.concatenate(batches)


def distributed_dataset(strategy, source, global_batch_size, seed=0, start_step=0):
    """Per-replica training input for ``strategy``: each replica gets ``global_batch_size / replicas``.

    Uses ``strategy.distribute_datasets_from_function``; each input pipeline
    reads its own shard, with its own shuffle seed, from ``start_step`` on.
    """
    replicas = strategy.num_replicas_in_sync
    if global_batch_size % replicas:
        raise DataError(f"global batch size {global_batch_size} is not divisible by {replicas} replicas")

    def per_replica(context):
        batch = context.get_per_replica_batch_size(global_batch_size)
        # Each pipeline feeds num_replicas / num_pipelines replicas a batch per step.
        batches_per_step = context.num_replicas_in_sync // context.num_input_pipelines
        return image_dataset(
            source,
            batch,
            True,
            seed + context.input_pipeline_id,
            input_context=context,
            start_step=start_step * batches_per_step,
        )

    return strategy.distribute_datasets_from_function(per_replica)


def array_dataset(images, batch_size, training=True, seed=0):
    """A ``tf.data`` pipeline over an in-memory ``[N, H, W, C]`` float array in [-1, 1].

    Training pipelines shuffle (seeded, with the strategy-safe stateless
    permutation of ``image_dataset``), repeat, batch with drop-remainder and
    prefetch; evaluation pipelines batch in order and keep the remainder.
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4:
        raise ValueError(f"array_dataset: images have shape {images.shape}; expected [N, H, W, C]")
    if training and len(images) < batch_size:
        raise ValueError(f"array_dataset: {len(images)} images cannot fill one batch of {batch_size}")
    ds = _permuted_epochs(images, seed) if training else tf.data.Dataset.from_tensor_slices(images)
    ds = ds.batch(batch_size, drop_remainder=training)
    return ds.prefetch(tf.data.AUTOTUNE)
