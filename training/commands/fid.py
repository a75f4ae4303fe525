"""``hat-ebm fid``: FID and KID of a trained model's samples against a data set.

FID follows the TTUR protocol (Heusel et al. 2017): Inception (2015-12-05)
``pool_3`` features of uint8 images, the Fréchet distance of their Gaussian
statistics. KID is the unbiased cubic-kernel MMD² of Bińkowski et al. (2018).
Samples are drawn, featurised and folded into running statistics one batch at
a time, so memory does not grow with ``--num``. A JSON record keeps what is
needed to reproduce the number.
"""

import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from training.commands.common import MODEL_FILE, add_sampler_flags, load_model_and_sampler, positive_int


def register(subparsers):
    parser = subparsers.add_parser(
        "fid",
        help="FID and KID of a model's samples against a data set (TTUR Inception protocol)",
        description="Draw samples with stated sampler settings and compute their FID (TTUR protocol: Inception "
        "2015-12-05 pool_3 features, Heusel et al. 2017) and KID (Bińkowski et al. 2018) against a data set; "
        "write a JSON record of everything needed to reproduce the numbers.",
    )
    parser.add_argument("--model", required=True, help="run directory or .keras file")
    parser.add_argument(
        "--data",
        help="reference data: digits[:SPLIT] (train, held_out, all), tfds:NAME[:SPLIT], an image folder or a "
        ".npz/.npy file (not needed when --ref-stats exists)",
    )
    parser.add_argument("--data-dir", help="TFDS data directory")
    parser.add_argument("--ref-num", type=positive_int, help="use at most this many reference images (default: all)")
    parser.add_argument(
        "--ref-stats", help="reference statistics .npz (mu, sigma): loaded if it exists, else computed and written"
    )
    parser.add_argument("--num", type=positive_int, default=50000, help="number of samples (default 50000)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed; chain i uses (seed, i) as `sample` does")
    parser.add_argument("--batch-size", type=positive_int, default=250, help="chains (and data images) per batch")
    add_sampler_flags(parser, "the run's evaluation sampler; a .keras file's own")
    parser.add_argument(
        "--features",
        default="inception",
        help="feature extractor: inception (from $HAT_EBM_INCEPTION or the cache), inception:PATH, "
        "a .keras file or a SavedModel directory (default: inception)",
    )
    parser.add_argument("--feature-batch-size", type=positive_int, default=50, help="images per feature network call")
    parser.add_argument("--kid-subsets", type=positive_int, default=100, help="KID rounds (default 100)")
    parser.add_argument("--kid-subset-size", type=positive_int, default=1000, help="KID rows per round (default 1000)")
    parser.add_argument(
        "--kid-pool",
        type=positive_int,
        default=10000,
        help="feature rows kept per set for KID, a uniform random subset (default 10000)",
    )
    parser.add_argument("--dump-samples", help="write the samples to this .npz (array 'images', uint8 [N, H, W, C])")
    parser.add_argument(
        "--record",
        help="JSON record (default: next to --dump-samples as NAME.fid.json, else fid.json next to the model)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing record or samples file")
    parser.set_defaults(func=run)


def model_file(path):
    """The ``.keras`` file of a run directory or model path."""
    path = Path(path)
    return path / MODEL_FILE if path.is_dir() else path


def default_record_path(args):
    if args.dump_samples:
        dump = Path(args.dump_samples)
        return dump.with_name(dump.name.removesuffix(".npz") + ".fid.json")
    return model_file(args.model).parent / "fid.json"


def _source_key(source):
    """The fields that decide which images a data source yields (not where TFDS keeps them)."""
    return {k: v for k, v in dataclasses.asdict(source).items() if k != "data_dir"}


def _check_provenance(path, metadata, extractor, source):
    """Refuse reference statistics computed with another feature network or from other data."""
    if metadata is None:  # e.g. TTUR's published statistics: mu and sigma only
        return
    recorded = metadata.get("features", {})
    if recorded.get("sha256") != extractor.info.get("sha256"):
        raise ValueError(
            f"reference statistics {os.fspath(path)!r} were computed with the feature extractor {recorded}, not "
            f"{extractor.info}: delete the file or pass another --ref-stats"
        )
    if source is not None and metadata.get("source") != _source_key(source):
        raise ValueError(
            f"reference statistics {os.fspath(path)!r} were computed from {metadata.get('source')}, not "
            f"{_source_key(source)}: delete the file or pass another --ref-stats"
        )


def compute_reference(source, extractor, batch_size, ref_num, kid_pool, seed):
    """Feature statistics of a data source: ``(StreamingMoments, FeatureReservoir)``, with a progress bar."""
    import keras

    from hat_ebm_tf.data import image_dataset, model_range_to_uint8
    from hat_ebm_tf.metrics import FeatureReservoir, StreamingMoments

    dataset = image_dataset(source, batch_size, training=False)
    total = int(dataset.cardinality()) * batch_size if int(dataset.cardinality()) >= 0 else None
    if ref_num is not None:
        total = ref_num if total is None else min(ref_num, total)
    moments, reservoir = StreamingMoments(), FeatureReservoir(kid_pool, seed)
    print("reference statistics:")
    progbar = keras.utils.Progbar(total, unit_name="image")
    for batch in dataset:
        images = model_range_to_uint8(batch)[: None if ref_num is None else ref_num - moments.count]
        features = extractor(images)
        moments.update(features)
        reservoir.update(features)
        progbar.update(moments.count)
        if ref_num is not None and moments.count >= ref_num:
            break
    if total is None or moments.count < total:  # the last batch was short of the estimate
        progbar.update(moments.count, finalize=True)
    if moments.count < 2:
        raise ValueError(f"data source {_source_key(source)} gave {moments.count} images; need at least 2")
    return moments, reservoir


def reference_statistics(args, image_shape, extractor):
    """Load ``--ref-stats`` or compute (and cache) the data's statistics.

    Returns:
        ``(stats, info)``: stats as from ``load_statistics``; info for the record.
    """
    from hat_ebm_tf.data import parse_source
    from hat_ebm_tf.metrics import load_statistics, save_statistics

    source = None
    if args.data:
        source = parse_source(args.data, image_shape[0], image_shape[2], data_dir=args.data_dir)
    cached = args.ref_stats is not None and Path(args.ref_stats).is_file()
    start = time.perf_counter()
    if cached:
        stats = load_statistics(args.ref_stats)
        _check_provenance(args.ref_stats, stats["metadata"], extractor, source)
    else:  # run() has checked that --data is given
        moments, reservoir = compute_reference(
            source, extractor, args.batch_size, args.ref_num, args.kid_pool, args.seed
        )
        metadata = {"features": extractor.info, "data": args.data, "source": _source_key(source)}
        stats = {
            "mu": moments.mean,
            "sigma": moments.covariance,
            "count": moments.count,
            "kid_features": reservoir.features,
            "metadata": metadata,
        }
        if args.ref_stats is not None:
            save_statistics(args.ref_stats, moments, reservoir.features, metadata)
    info = {
        "path": args.ref_stats,
        "loaded": cached,
        "count": stats["count"],
        "data": (stats["metadata"] or {}).get("data", args.data),
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


def sample_statistics(model, config, extractor, args, dump):
    """Draw ``args.num`` samples batch by batch: ``(StreamingMoments, FeatureReservoir, wall times)``."""
    import keras

    from hat_ebm_tf.data import model_range_to_uint8
    from hat_ebm_tf.metrics import FeatureReservoir, StreamingMoments
    from hat_ebm_tf.sampler import row_seeds

    moments, reservoir = StreamingMoments(), FeatureReservoir(args.kid_pool, args.seed)
    times = {"sampling": 0.0, "sample_features": 0.0}
    print(f"sampling {args.num} images, {config.num_steps} Langevin steps:")
    progbar = keras.utils.Progbar(args.num, unit_name="sample")
    for offset in range(0, args.num, args.batch_size):
        size = min(args.batch_size, args.num - offset)
        tick = time.perf_counter()
        # Row seeds (seed, offset + i): the chains of `hat-ebm sample --seed` and `HatEBM.sample`.
        images = model_range_to_uint8(model.sample_with_seeds(row_seeds(args.seed, size, offset=offset), config))
        times["sampling"] += time.perf_counter() - tick
        if dump is not None:
            dump.images[offset : offset + size] = images
        tick = time.perf_counter()
        features = extractor(images)
        moments.update(features)
        reservoir.update(features)
        times["sample_features"] += time.perf_counter() - tick
        progbar.update(offset + size)
    return moments, reservoir, {k: round(v, 3) for k, v in times.items()}


def run(args):
    start = time.perf_counter()
    if args.num < 2:
        raise ValueError(f"--num {args.num}: a covariance needs at least 2 samples")
    if args.data is None and not (args.ref_stats and Path(args.ref_stats).is_file()):
        raise ValueError("give --data, or --ref-stats naming an existing statistics file")
    if (Path(args.model) / "saved_model.pb").is_file():
        raise ValueError(
            f"--model {args.model} is a SavedModel: its `sample` signature has one sampler's settings baked in, so "
            "FID with stated settings needs the run directory or .keras file it was exported from"
        )
    if args.ref_stats is not None and not Path(args.ref_stats).parent.is_dir():
        raise ValueError(f"--ref-stats {args.ref_stats}: no directory {os.fspath(Path(args.ref_stats).parent)!r}")
    from training.outputs import output_file

    # The outputs, checked before the long sampling; an earlier result is replaced only with --overwrite.
    if args.dump_samples is not None:
        dump_path = output_file(args.dump_samples, "--dump-samples", overwrite=args.overwrite, suffix=".npz")
        args.dump_samples = os.fspath(dump_path)
    record_path = output_file(args.record or default_record_path(args), "--record", overwrite=args.overwrite)

    import keras
    import tensorflow as tf

    import hat_ebm_tf
    from hat_ebm_tf.features import load_feature_extractor, path_sha256
    from hat_ebm_tf.metrics import frechet_distance, kernel_inception_distance

    # First, so that a missing Inception file (InceptionNotFoundError) stops the command before any sampling.
    extractor = load_feature_extractor(args.features, args.feature_batch_size)
    model, config = load_model_and_sampler(args.model, args)
    reference, reference_info = reference_statistics(args, model.image_shape, extractor)

    dump = SampleDump(args.dump_samples, args.num, model.image_shape) if args.dump_samples else None
    try:
        moments, reservoir, times = sample_statistics(model, config, extractor, args, dump)
    except BaseException:
        if dump is not None:
            dump.close(keep=False)
        raise
    if dump is not None:
        dump.close(keep=True)
    tick = time.perf_counter()
    fid = frechet_distance(moments.mean, moments.covariance, reference["mu"], reference["sigma"])
    kid = None
    if reference["kid_features"] is not None:
        mean, std = kernel_inception_distance(
            reservoir.features, reference["kid_features"], args.kid_subsets, args.kid_subset_size, args.seed
        )
        subset = min(args.kid_subset_size, len(reservoir.features), len(reference["kid_features"]))
        kid = {"mean": mean, "std": std, "subsets": args.kid_subsets, "subset_size": subset, "pool": args.kid_pool}
    times["fid_kid"] = round(time.perf_counter() - tick, 3)

    checkpoint = model_file(args.model)
    record = {
        "fid": fid,
        "kid": kid,
        "num_samples": args.num,
        "seed": args.seed,
        "batch_size": args.batch_size,
        "sampler": config.to_dict(),
        "model": {
            "path": os.fspath(checkpoint),
            "sha256": path_sha256(checkpoint),
            "mode": model.mode,
            "image_shape": list(model.image_shape),
        },
        "features": extractor.info,
        "reference": reference_info,
        "samples_file": args.dump_samples,
        "wall_time_s": {
            **times,
            "reference": reference_info["wall_time_s"],
            "total": round(time.perf_counter() - start, 3),
        },
        "versions": {"hat_ebm_tf": hat_ebm_tf.__version__, "tensorflow": tf.__version__, "keras": keras.__version__},
        "command": ["hat-ebm", *sys.argv[1:]],
    }
    record_path.write_text(json.dumps(record, indent=2) + "\n")
    if kid is None:
        kid_text = "n/a (the reference statistics hold no KID features)"
    else:
        kid_text = f"{kid['mean']:.6f} ± {kid['std']:.6f} ({kid['subsets']} subsets of {kid['subset_size']})"
    print(f"FID {fid:.4f}")
    print(f"KID {kid_text}")
    print(f"wrote {record_path}" + (f" and {args.dump_samples}" if dump is not None else ""))
