"""``hat-ebm ood``: an out-of-distribution report of an exported SavedModel's score.

Scoring needs only TensorFlow and the SavedModel (``export.scoring``); the
offline suite, data sources and the figures come from
``hat_ebm_tf.evaluation.ood_suite``.
"""

import json
from pathlib import Path

from training.commands.common import positive_int

SUITES = ("digits",)


def register(subparsers):
    parser = subparsers.add_parser(
        "ood",
        help="OOD report of a SavedModel: AUROC, AUPR, FPR@95%%TPR, the calibrated detector's FPR/TPR, figures",
        description=(
            "Score an in-distribution set and out-of-distribution sets with a SavedModel written by `hat-ebm "
            "export` (ood_score; higher = more out-of-distribution), and report AUROC, AUPR (OOD as positive) and "
            "FPR@95%TPR for each OOD set, as a table (and as JSON: --json, --report-dir). A calibrated SavedModel "
            "(`hat-ebm export --calibrate`) is scored with ood_detect, and the report adds the fraction of each set "
            "it flags: its FPR on the in-distribution set and its TPR on each OOD set, at the stored threshold. "
            "DATA is a .npy "
            "file, or a .npz file with an array 'images' (uint8 [N, H, W, C] pixels or floats in [-1, 1]), or a "
            "data source as in configs (digits:test, tfds:NAME:SPLIT, a folder), read at the model's image size. "
            "--suite digits scores digits:test against the offline digits OOD sets. --report-dir writes "
            "ood_report.json, ood_histograms.png and ood_roc.png."
        ),
    )
    parser.add_argument(
        "--model", required=True, help="SavedModel version directory, or model directory (highest version)"
    )
    parser.add_argument(
        "--in", dest="in_data", metavar="DATA", help="in-distribution images (default with --suite digits: digits:test)"
    )
    parser.add_argument(
        "--out", dest="out_data", action="append", default=[], metavar="DATA", help="OOD images (repeatable)"
    )
    parser.add_argument(
        "--suite",
        choices=SUITES,
        help="add the offline OOD suite: rotated, inverted, uniform noise, constant, photo patches, letters",
    )
    parser.add_argument("--limit", type=positive_int, help="score at most N images of each data source")
    parser.add_argument("--batch-size", type=positive_int, default=256)
    parser.add_argument("--json", dest="json_path", help="also write the JSON report to this file")
    parser.add_argument(
        "--report-dir", help="write ood_report.json, ood_histograms.png and ood_roc.png to this directory"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing --json or --report-dir files")
    parser.set_defaults(func=run)


def load_images(path):
    """Images of a ``.npy`` or ``.npz`` (array ``images``) file.

    Returns:
        ``[N, H, W, C]`` uint8 pixels, or float32 in [-1, 1].

    Raises:
        DataError: missing or unreadable file, unknown format, or images of the wrong rank, dtype or range.
    """
    import numpy as np

    from hat_ebm_tf.data import read_array_file
    from hat_ebm_tf.errors import DataError

    if Path(path).suffix not in (".npz", ".npy"):
        raise DataError(f"{path}: unsupported data file; expected .npy, or .npz with an array 'images'")
    images = read_array_file(path)
    if images.ndim != 4 or not len(images):
        raise DataError(f"{path}: images have shape {list(images.shape)}; expected a non-empty [N, H, W, C]")
    if images.dtype == np.uint8:
        return images
    if not np.issubdtype(images.dtype, np.floating):
        raise DataError(f"{path}: images have dtype {images.dtype}; expected uint8 pixels or floats in [-1, 1]")
    images = images.astype(np.float32, copy=False)
    low, high = float(images.min()), float(images.max())
    if not (-1.0 <= low and high <= 1.0):
        raise DataError(f"{path}: float images must be in [-1, 1], got values in [{low:g}, {high:g}]")
    return images


def read_data(spec, image_shape, limit=None):
    """Images of ``spec``: a ``.npy``/``.npz`` file (``load_images``) or a data source at ``image_shape``.

    Returns:
        ``[N, H, W, C]`` uint8 pixels, or float32 in [-1, 1]; at most ``limit`` images.
    """
    if Path(spec).suffix in (".npy", ".npz"):
        return load_images(spec)[:limit]
    from hat_ebm_tf.data import parse_source, read_source

    height, _, channels = image_shape
    return read_source(parse_source(spec, height, channels), limit=limit)


def run(args):
    from export.scoring import load_scorer
    from hat_ebm_tf.errors import ConfigError
    from hat_ebm_tf.evaluation import ood_suite
    from training.outputs import check_writable_dir, output_file

    if not args.suite and not (args.in_data and args.out_data):
        raise ConfigError("hat-ebm ood: give --in DATA and at least one --out DATA, or --suite digits")
    json_path = output_file(args.json_path, "--json", overwrite=args.overwrite) if args.json_path else None
    report_dir = Path(args.report_dir) if args.report_dir else None
    if report_dir:
        check_writable_dir(report_dir, "--report-dir")
        existing = (ood_suite.REPORT_FILE, ood_suite.HISTOGRAM_FILE, ood_suite.ROC_FILE) if report_dir.is_dir() else ()
        for name in existing:
            output_file(report_dir / name, "--report-dir", overwrite=args.overwrite)
    scorer = load_scorer(args.model, batch_size=args.batch_size)
    calibrated = scorer.calibration is not None

    def scored(name, images):
        try:
            return scorer.detect(images) if calibrated else {"score": scorer(images)}
        except ValueError as err:  # shape or dtype the model does not take
            raise ValueError(f"{name}: {err}") from err

    in_set, out_sets = None, []
    if args.suite:
        if scorer.image_shape[-1] != 1:
            raise ConfigError(f"--suite digits needs a single-channel model; {scorer.path} takes {scorer.image_shape}")
        in_set, out_sets = ood_suite.digits_suite(scorer.image_shape[0])
    if args.in_data:
        in_set = (args.in_data, read_data(args.in_data, scorer.image_shape, args.limit))
    out_sets += [(spec, read_data(spec, scorer.image_shape, args.limit)) for spec in args.out_data]
    report = ood_suite.ood_report(
        scorer.path,
        (in_set[0], scored(*in_set)),
        [(name, scored(name, images)) for name, images in out_sets],
        calibration=scorer.calibration,
    )
    print(ood_suite.format_report(report))
    text = json.dumps(report, indent=1)
    if json_path:
        json_path.write_text(text + "\n")
    if report_dir:
        report_dir.mkdir(parents=True, exist_ok=True)
        (report_dir / ood_suite.REPORT_FILE).write_text(text + "\n")
        for path in ood_suite.save_figures(report, report_dir):
            print(f"wrote {path}")
        print(f"wrote {report_dir / ood_suite.REPORT_FILE}")
