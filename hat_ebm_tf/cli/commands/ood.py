"""``hat-ebm ood``: out-of-distribution metrics of an exported SavedModel's ``ood_score`` (``evaluation.ood``).

Needs only TensorFlow and the SavedModel (``hat_ebm_tf.serving.scoring``), not
the model's Python code.
"""

import json

from hat_ebm_tf.argtypes import positive_int


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


def run(args):
    from hat_ebm_tf.evaluation.ood import format_report, ood_report
    from hat_ebm_tf.serving.scoring import load_scorer
    from hat_ebm_tf.training.outputs import output_file

    json_path = output_file(args.json_path, "--json", overwrite=args.overwrite) if args.json_path else None
    report = ood_report(load_scorer(args.model, batch_size=args.batch_size), args.in_data, args.out_data)
    print(format_report(report))
    text = json.dumps(report, indent=1)
    print(text)
    if json_path:
        json_path.write_text(text + "\n")
