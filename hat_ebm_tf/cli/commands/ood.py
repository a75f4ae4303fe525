"""``hat-ebm ood``: an out-of-distribution report of an exported SavedModel's score.

Scoring needs only TensorFlow and the SavedModel
(``hat_ebm_tf.serving.scoring``); the report and its figures come from
``hat_ebm_tf.evaluation.ood``, the offline suite from
``hat_ebm_tf.evaluation.ood_suite``.
"""

import json
from pathlib import Path

from hat_ebm_tf.argtypes import positive_int
from hat_ebm_tf.evaluation import ood
from hat_ebm_tf.outputs import check_writable_dir, output_file


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
            "DATA is a data source as in configs and `hat-ebm export --calibrate` (digits:test, tfds:NAME:SPLIT, "
            "a folder of images, a .npy file, or a .npz file with an array 'images'; files hold uint8 [N, H, W, C] "
            "pixels or floats in [-1, 1]), read as export --calibrate reads it: at the model's image size, "
            "centre-cropped and resized (antialiased), and converted to the model's channels. "
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
        choices=ood.SUITES,
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


def run(args):
    ood.check_sets(args.in_data, args.out_data, args.suite)  # before the slow load
    json_path = output_file(args.json_path, "--json", overwrite=args.overwrite) if args.json_path else None
    report_dir = Path(args.report_dir) if args.report_dir else None
    if report_dir:
        check_writable_dir(report_dir, "--report-dir")
        existing = (ood.REPORT_FILE, ood.HISTOGRAM_FILE, ood.ROC_FILE) if report_dir.is_dir() else ()
        for name in existing:
            output_file(report_dir / name, "--report-dir", overwrite=args.overwrite)
    report = ood.evaluate(
        ood.load_scorer(args.model, batch_size=args.batch_size),
        args.in_data,
        args.out_data,
        suite=args.suite,
        limit=args.limit,
    )
    print(ood.format_report(report))
    text = json.dumps(report, indent=1)
    if json_path:
        json_path.write_text(text + "\n")
    if report_dir:
        report_dir.mkdir(parents=True, exist_ok=True)
        (report_dir / ood.REPORT_FILE).write_text(text + "\n")
        for path in ood.save_figures(report, report_dir):
            print(f"wrote {path}")
        print(f"wrote {report_dir / ood.REPORT_FILE}")
