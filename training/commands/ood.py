"""``hat-ebm ood``: out-of-distribution metrics of an exported SavedModel's ``ood_score``.

Needs only TensorFlow and the SavedModel (``export.scoring``), not the model's
Python code.
"""

import json
from pathlib import Path

from training.commands.common import positive_int


def register(subparsers):
    parser = subparsers.add_parser(
        "ood",
        help="AUROC, AUPR and FPR@95%%TPR of a SavedModel's ood_score",
        description=(
            "Score an in-distribution set and one or more out-of-distribution sets with the ood_score "
            "signature of a SavedModel written by `hat-ebm export` (higher = more out-of-distribution), "
            "and report AUROC, AUPR (OOD as positive) and FPR@95%TPR for each OOD set, as a table and as JSON. "
            "DATA is a .npy file, or a .npz file with an array 'images': uint8 [N, H, W, C] pixels or "
            "float images in [-1, 1]."
        ),
    )
    parser.add_argument(
        "--model", required=True, help="SavedModel version directory, or model directory (highest version)"
    )
    parser.add_argument("--in", dest="in_data", required=True, metavar="DATA", help="in-distribution images")
    parser.add_argument(
        "--out", dest="out_data", required=True, action="append", metavar="DATA", help="OOD images (repeatable)"
    )
    parser.add_argument("--batch-size", type=positive_int, default=256)
    parser.add_argument("--json", dest="json_path", help="also write the JSON report to this file")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
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


def _table(report):
    """The report as a plain-text table, one row per out-of-distribution set."""
    header = ("out-of-distribution", "N", "AUROC", "AUPR", "FPR@95%TPR", "mean score")
    rows = [
        (
            e["data"],
            str(e["num_out"]),
            *(f"{e[k]:.4f}" for k in ("auroc", "aupr", "fpr_at_95_tpr")),
            f"{e['mean_score']:.4g}",
        )
        for e in report["out"]
    ]
    first = max(len(row[0]) for row in [header, *rows])
    lines = [f"{row[0]:<{first}}" + "".join(f"{cell:>12}" for cell in row[1:]) for row in [header, *rows]]
    inside = report["in"]
    return "\n".join(
        [
            f"model {report['model']} ({report['signature']}; higher = more out-of-distribution)",
            f"in-distribution {inside['data']}: N = {inside['num']}, mean score {inside['mean_score']:.4g}",
            lines[0],
            "-" * len(lines[0]),
            *lines[1:],
        ]
    )


def run(args):
    from export.scoring import SCORE_SIGNATURE, load_scorer, ood_metrics
    from training.outputs import output_file

    json_path = output_file(args.json_path, "--json", overwrite=args.overwrite) if args.json_path else None
    scorer = load_scorer(args.model, batch_size=args.batch_size)

    def scores_of(path):
        images = load_images(path)
        try:
            return scorer(images)
        except ValueError as err:  # shape or dtype the model does not take
            raise ValueError(f"{path}: {err}") from err

    in_scores = scores_of(args.in_data)
    report = {
        "model": str(scorer.path),
        "signature": SCORE_SIGNATURE,
        "in": {"data": args.in_data, "num": len(in_scores), "mean_score": float(in_scores.mean())},
        "out": [],
    }
    for path in args.out_data:
        out_scores = scores_of(path)
        report["out"].append(
            {"data": path, "mean_score": float(out_scores.mean()), **ood_metrics(in_scores, out_scores)}
        )
    print(_table(report))
    text = json.dumps(report, indent=1)
    print(text)
    if json_path:
        json_path.write_text(text + "\n")
