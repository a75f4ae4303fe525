"""FID and KID of a trained model's samples against a data set (``hat-ebm fid`` calls ``fid_record``).

FID follows the TTUR protocol (Heusel et al. 2017): Inception (2015-12-05)
``pool_3`` features of uint8 images, the Fréchet distance of their Gaussian
statistics. KID is the unbiased cubic-kernel MMD² of Bińkowski et al. (2018).
Samples are drawn, featurised and folded into running statistics one batch at
a time, so memory does not grow with ``--num``. A JSON record keeps what is
needed to reproduce the number.
"""

import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

import hat_ebm_tf
from hat_ebm_tf.data import image_dataset, model_range_to_uint8
from hat_ebm_tf.errors import ConfigError, DataError
from hat_ebm_tf.features import path_sha256
from hat_ebm_tf.metrics import (
    FeatureReservoir,
    StreamingMoments,
    frechet_distance,
    kernel_inception_distance,
    load_statistics,
    save_statistics,
)
from hat_ebm_tf.rng import row_seeds
from hat_ebm_tf.run_dir import RunDir
from hat_ebm_tf.sources import parse_source


@dataclasses.dataclass(frozen=True)
class Reference:
    """The reference set: a data source, and a statistics file that caches its features' statistics.

    Attributes:
        data: a data source spec (``parse_source``: ``digits:held_out``,
            ``tfds:NAME[:SPLIT]``, a folder, a ``.npz``/``.npy`` file), or
            None when ``stats`` exists.
        data_dir: the TFDS data directory, or None.
        stats: a statistics ``.npz`` (``mu``, ``sigma``, KID features): loaded
            if it exists, else computed and written; None: computed, not kept.
        num: use at most this many reference images (None: all).
    """

    data: str | None = None
    data_dir: str | None = None
    stats: str | None = None
    num: int | None = None


@dataclasses.dataclass(frozen=True)
class FidSettings:
    """How many samples are drawn and how KID is estimated.

    Attributes:
        num: number of samples (>= 2, for a covariance).
        seed: sampling seed; chain ``i`` uses the row seed ``(seed, i)`` as
            ``HatEBM.sample`` does; also the seed of KID's draws.
        batch_size: chains (and data images) per batch.
        kid_subsets: KID rounds.
        kid_subset_size: KID rows per round.
        kid_pool: feature rows kept per set for KID (a uniform random subset).
    """

    num: int = 50000
    seed: int = 0
    batch_size: int = 250
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    kid_pool: int = 10000


def _source_key(source):
    """The fields that decide which images a data source yields (not where TFDS keeps them)."""
    return {k: v for k, v in dataclasses.asdict(source).items() if k != "data_dir"}


def _check_provenance(path, metadata, extractor, source):
    """Refuse reference statistics computed with another feature network or from other data (``DataError``)."""
    if metadata is None:  # e.g. TTUR's published statistics: mu and sigma only
        return
    recorded = metadata.get("features", {})
    if recorded.get("sha256") != extractor.info.get("sha256"):
        raise DataError(
            f"reference statistics {os.fspath(path)!r} were computed with the feature extractor {recorded}, not "
            f"{extractor.info}: delete the file or pass another --ref-stats"
        )
    if source is not None and metadata.get("source") != _source_key(source):
        raise DataError(
            f"reference statistics {os.fspath(path)!r} were computed from {metadata.get('source')}, not "
            f"{_source_key(source)}: delete the file or pass another --ref-stats"
        )


def _progress_bar(total, unit_name):
    """A Keras progress bar on standard output when it is a terminal; None elsewhere (its ANSI codes would be noise)."""
    return keras.utils.Progbar(total, unit_name=unit_name) if sys.stdout.isatty() else None


def compute_reference(source, extractor, batch_size, ref_num, kid_pool, seed):
    """Feature statistics of a data source: ``(StreamingMoments, FeatureReservoir)``, with a progress bar."""
    dataset = image_dataset(source, batch_size, training=False)
    total = int(dataset.cardinality()) * batch_size if int(dataset.cardinality()) >= 0 else None
    if ref_num is not None:
        total = ref_num if total is None else min(ref_num, total)
    moments, reservoir = StreamingMoments(), FeatureReservoir(kid_pool, seed)
    print("reference statistics:")
    progbar = _progress_bar(total, "image")
    for batch in dataset:
        images = model_range_to_uint8(batch)[: None if ref_num is None else ref_num - moments.count]
        features = extractor(images)
        moments.update(features)
        reservoir.update(features)
        if progbar:
            progbar.update(moments.count)
        if ref_num is not None and moments.count >= ref_num:
            break
    if progbar and (total is None or moments.count < total):  # the last batch was short of the estimate
        progbar.update(moments.count, finalize=True)
    if moments.count < 2:
        raise DataError(f"data source {_source_key(source)} gave {moments.count} images; need at least 2")
    return moments, reservoir


def reference_statistics(extractor, image_shape, reference, settings):
    """Load ``reference.stats``, or compute (and cache there) the statistics of ``reference.data``.

    Args:
        extractor: the ``FeatureExtractor``.
        image_shape: the model's ``(H, W, C)``, which the data is read at.
        reference: ``Reference``.
        settings: ``FidSettings`` (batch size, KID pool and seed).

    Returns:
        ``(stats, info)``: stats as from ``load_statistics``; info for the record.
    """
    data, ref_stats = reference.data, reference.stats
    source = None
    if data:
        source = parse_source(data, image_shape[0], image_shape[2], data_dir=reference.data_dir)
    cached = ref_stats is not None and Path(ref_stats).is_file()
    start = time.perf_counter()
    if cached:
        stats = load_statistics(ref_stats)
        _check_provenance(ref_stats, stats["metadata"], extractor, source)
    else:
        if source is None:
            raise ConfigError("give --data, or --ref-stats naming an existing statistics file")
        moments, reservoir = compute_reference(
            source, extractor, settings.batch_size, reference.num, settings.kid_pool, settings.seed
        )
        metadata = {"features": extractor.info, "data": data, "source": _source_key(source)}
        stats = {
            "mu": moments.mean,
            "sigma": moments.covariance,
            "count": moments.count,
            "kid_features": reservoir.features,
            "metadata": metadata,
        }
        if ref_stats is not None:
            save_statistics(ref_stats, moments, reservoir.features, metadata)
    info = {
        "path": ref_stats,
        "loaded": cached,
        "count": stats["count"],
        "data": (stats["metadata"] or {}).get("data", data),
        "source": (stats["metadata"] or {}).get("source"),
        "kid_rows": None if stats["kid_features"] is None else len(stats["kid_features"]),
        "wall_time_s": round(time.perf_counter() - start, 3),
    }
    return stats, info


class SampleDump:
    """Samples written as they come into a uint8 ``.npy`` memory map, then stored as ``.npz`` (array ``images``).

    Zipping from the map streams it in chunks, so the images need not fit in
    memory (50 000 at 128×128×3 are 2.5 GB).
    """

    def __init__(self, path, num, image_shape):
        self.path = Path(path)
        handle, self._scratch = tempfile.mkstemp(suffix=".npy", dir=self.path.parent)
        os.close(handle)
        self.images = np.lib.format.open_memmap(self._scratch, mode="w+", dtype=np.uint8, shape=(num, *image_shape))

    def close(self, keep):
        """Write the ``.npz`` if ``keep``; always remove the scratch file."""
        try:
            if keep:
                np.savez_compressed(self.path, images=self.images)
        finally:
            del self.images
            os.unlink(self._scratch)


def sample_statistics(model, config, extractor, dump, settings):
    """Draw ``settings.num`` samples batch by batch: ``(StreamingMoments, FeatureReservoir, wall times)``.

    Args:
        model: the ``HatEBM``.
        config: the ``LangevinConfig`` to sample with.
        extractor: the ``FeatureExtractor``.
        dump: a ``SampleDump`` the uint8 samples are written to, or None.
        settings: ``FidSettings``.
    """
    num, seed, batch_size = settings.num, settings.seed, settings.batch_size
    moments, reservoir = StreamingMoments(), FeatureReservoir(settings.kid_pool, seed)
    times = {"sampling": 0.0, "sample_features": 0.0}
    print(f"sampling {num} images, {config.num_steps} Langevin steps:")
    progbar = _progress_bar(num, "sample")
    for offset in range(0, num, batch_size):
        size = min(batch_size, num - offset)
        tick = time.perf_counter()
        # Row seeds (seed, offset + i): the chains of `hat-ebm sample --seed` and `HatEBM.sample`.
        images = model_range_to_uint8(model.sample_with_seeds(row_seeds(seed, size, offset=offset), config))
        times["sampling"] += time.perf_counter() - tick
        if dump is not None:
            dump.images[offset : offset + size] = images
        tick = time.perf_counter()
        features = extractor(images)
        moments.update(features)
        reservoir.update(features)
        times["sample_features"] += time.perf_counter() - tick
        if progbar:
            progbar.update(offset + size)
    return moments, reservoir, {k: round(v, 3) for k, v in times.items()}


def fid_record(model, config, extractor, model_path, reference, settings, dump_samples=None, started=None):
    """FID and KID of ``settings.num`` samples of ``model`` against a reference set, as a JSON-ready record.

    Args:
        model: the ``HatEBM``.
        config: the ``LangevinConfig`` to sample with.
        extractor: the ``FeatureExtractor`` (e.g. ``load_feature_extractor("inception")``).
        model_path: the run directory or ``.keras`` file ``model`` came from, for the record.
        reference: ``Reference``.
        settings: ``FidSettings``.
        dump_samples: a ``.npz`` the uint8 samples are written to (array ``images``), or None.
        started: ``time.perf_counter()`` when the caller started, for the total wall time (default: now).

    Returns:
        dict: ``fid``, ``kid`` (None when the reference statistics hold no
        KID features), the settings, the model's and features' identity, the
        reference's provenance, wall times and versions.
    """
    start = time.perf_counter() if started is None else started
    num, seed = settings.num, settings.seed
    if num < 2:
        raise ConfigError(f"--num {num}: a covariance needs at least 2 samples")
    stats, reference_info = reference_statistics(extractor, model.image_shape, reference, settings)
    dump = SampleDump(dump_samples, num, model.image_shape) if dump_samples else None
    try:
        moments, reservoir, times = sample_statistics(model, config, extractor, dump, settings)
    except BaseException:
        if dump is not None:
            dump.close(keep=False)
        raise
    if dump is not None:
        dump.close(keep=True)
    tick = time.perf_counter()
    fid = frechet_distance(moments.mean, moments.covariance, stats["mu"], stats["sigma"])
    kid = None
    if stats["kid_features"] is not None:
        subsets, size = settings.kid_subsets, settings.kid_subset_size
        mean, std = kernel_inception_distance(reservoir.features, stats["kid_features"], subsets, size, seed)
        subset = min(size, len(reservoir.features), len(stats["kid_features"]))
        kid = {"mean": mean, "std": std, "subsets": subsets, "subset_size": subset, "pool": settings.kid_pool}
    times["fid_kid"] = round(time.perf_counter() - tick, 3)
    checkpoint = RunDir.model_file(model_path)
    return {
        "fid": fid,
        "kid": kid,
        "num_samples": num,
        "seed": seed,
        "batch_size": settings.batch_size,
        "sampler": config.to_dict(),
        "model": {
            "path": os.fspath(checkpoint),
            "sha256": path_sha256(checkpoint),
            "mode": model.mode.name,
            "image_shape": list(model.image_shape),
        },
        "features": extractor.info,
        "reference": reference_info,
        "samples_file": dump_samples,
        "wall_time_s": {
            **times,
            "reference": reference_info["wall_time_s"],
            "total": round(time.perf_counter() - start, 3),
        },
        "versions": {"hat_ebm_tf": hat_ebm_tf.__version__, "tensorflow": tf.__version__, "keras": keras.__version__},
    }


def format_kid(kid):
    """One line of a record's ``kid``."""
    if kid is None:
        return "n/a (the reference statistics hold no KID features)"
    return f"{kid['mean']:.6f} ± {kid['std']:.6f} ({kid['subsets']} subsets of {kid['subset_size']})"
