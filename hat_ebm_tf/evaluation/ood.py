"""Out-of-distribution evaluation of an exported SavedModel's ``ood_score`` (``hat-ebm ood`` calls it).

The scores come from ``hat_ebm_tf.serving.scoring`` (TensorFlow and NumPy
only, not the model's Python code): higher = more out-of-distribution. The
metrics are AUROC, AUPR (OOD as positive) and FPR@95%TPR.
"""

from pathlib import Path


def load_images(path):
    """Images of a ``.npy`` or ``.npz`` (array ``images``) file.

    Returns:
        ``[N, H, W, C]`` uint8 pixels, or float32 in [-1, 1].

    Raises:
        DataError: missing or unreadable file, unknown format, or images of the wrong rank, dtype or range.
    """
    from hat_ebm_tf.data import read_array_file
    from hat_ebm_tf.errors import DataError
    from hat_ebm_tf.validation import check_image_array

    if Path(path).suffix not in (".npz", ".npy"):
        raise DataError(f"{path}: unsupported data file; expected .npy, or .npz with an array 'images'")
    return check_image_array(read_array_file(path), path, error=DataError)


def format_report(report):
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


def ood_report(scorer, in_data, out_data):
    """Score an in-distribution set and out-of-distribution sets, and their metrics.

    Args:
        scorer: a ``Scorer`` (``hat_ebm_tf.serving.load_scorer``).
        in_data: path of the in-distribution images (``load_images``).
        out_data: paths of out-of-distribution image sets.

    Returns:
        dict: ``model``, ``signature``, ``in`` (``data``, ``num``,
        ``mean_score``) and ``out``, one dict per set: ``data``,
        ``mean_score`` and ``ood_metrics``'s figures.

    Raises:
        DataError: an unreadable file; ValueError: images the model does not take.
    """
    from hat_ebm_tf.serving.scoring import ood_metrics

    def scores_of(path):
        images = load_images(path)
        try:
            return scorer(images)
        except ValueError as err:  # shape or dtype the model does not take
            raise ValueError(f"{path}: {err}") from err

    in_scores = scores_of(in_data)
    report = {
        "model": str(scorer.path),
        "signature": scorer.signature,
        "in": {"data": in_data, "num": len(in_scores), "mean_score": float(in_scores.mean())},
        "out": [],
    }
    for path in out_data:
        out_scores = scores_of(path)
        report["out"].append(
            {"data": path, "mean_score": float(out_scores.mean()), **ood_metrics(in_scores, out_scores)}
        )
    return report
