"""``hat-ebm fid``: FID and KID of a trained model's samples against a data set (``hat_ebm_tf.evaluation.fid``)."""

import json
import os
import sys
import time
from pathlib import Path

from hat_ebm_tf.argtypes import positive_int
from hat_ebm_tf.cli.common import add_sampler_flags, load_model_and_sampler
from hat_ebm_tf.errors import ConfigError, ModelFileError, RunDirError
from hat_ebm_tf.outputs import output_file
from hat_ebm_tf.run_dir import RunDir


def default_record_path(model, dump_samples=None):
    """Where the record goes by default: ``NAME.fid.json`` next to ``dump_samples``, else ``fid.json`` by the model.

    Args:
        model: a run directory or ``.keras`` file.
        dump_samples: the ``.npz`` the samples are written to, or None.
    """
    if dump_samples:
        dump = Path(dump_samples)
        return dump.with_name(dump.name.removesuffix(".npz") + ".fid.json")
    return RunDir.model_file(model).parent / RunDir.FID_RECORD


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


def run(args):
    start = time.perf_counter()
    if args.num < 2:
        raise ConfigError(f"--num {args.num}: a covariance needs at least 2 samples")
    if args.data is None and not (args.ref_stats and Path(args.ref_stats).is_file()):
        raise ConfigError("give --data, or --ref-stats naming an existing statistics file")
    if (Path(args.model) / "saved_model.pb").is_file():
        raise ModelFileError(
            f"--model {args.model} is a SavedModel: its `sample` signature has one sampler's settings baked in, so "
            "FID with stated settings needs the run directory or .keras file it was exported from"
        )
    if args.ref_stats is not None and not Path(args.ref_stats).parent.is_dir():  # it is written when computed
        raise RunDirError(f"--ref-stats {args.ref_stats}: no directory {os.fspath(Path(args.ref_stats).parent)!r}")
    # The outputs, checked before TensorFlow loads; an earlier result is replaced only with --overwrite.
    dump_samples = None
    if args.dump_samples is not None:
        dump_samples = os.fspath(
            output_file(args.dump_samples, "--dump-samples", overwrite=args.overwrite, suffix=".npz")
        )
    record_path = output_file(
        args.record or default_record_path(args.model, dump_samples), "--record", overwrite=args.overwrite
    )

    # TensorFlow: loaded only when the command runs, after the checks above.
    from hat_ebm_tf.evaluation.fid import FidSettings, Reference, fid_record, format_kid
    from hat_ebm_tf.features import load_feature_extractor

    # First, so that a missing Inception file (InceptionNotFoundError) stops the command before any sampling.
    extractor = load_feature_extractor(args.features, args.feature_batch_size)
    model, config = load_model_and_sampler(args.model, args)
    reference = Reference(data=args.data, data_dir=args.data_dir, stats=args.ref_stats, num=args.ref_num)
    settings = FidSettings(args.num, args.seed, args.batch_size, args.kid_subsets, args.kid_subset_size, args.kid_pool)
    record = fid_record(model, config, extractor, args.model, reference, settings, dump_samples, started=start)
    record["command"] = ["hat-ebm", *sys.argv[1:]]
    record_path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"FID {record['fid']:.4f}")
    print(f"KID {format_kid(record['kid'])}")
    print(f"wrote {record_path}" + (f" and {dump_samples}" if dump_samples is not None else ""))
