"""The out-of-distribution report of an exported SavedModel (``hat-ebm ood`` calls it).

The scores come from ``hat_ebm_tf.serving.scoring`` (TensorFlow and NumPy
only, not the model's Python code): higher = more out-of-distribution. The
report (``ood_report``) holds, per OOD set, AUROC, AUPR (OOD positive),
FPR@95%TPR and, for a calibrated SavedModel, the fraction of the set that
``ood_detect`` flags (its TPR at the stored threshold), with the fraction of
in-distribution images flagged (its FPR). It also holds the ROC curves and the
score histograms, which ``save_figures`` draws as PNGs.

``hat-ebm ood`` builds its parser and checks its flags with this module, so it
imports TensorFlow and matplotlib only inside the functions that need them.
"""

import os

import numpy as np

from hat_ebm_tf.errors import ConfigError, ModelFileError
from hat_ebm_tf.sources import parse_source

HISTOGRAM_FILE = "ood_histograms.png"
ROC_FILE = "ood_roc.png"
REPORT_FILE = "ood_report.json"
SUITES = ("digits",)


def read_data(spec, image_shape, limit=None):
    """Images of the data source ``spec``, read at ``image_shape`` as ``export --calibrate`` reads them.

    Every source, a ``.npy``/``.npz`` file included, is read by
    ``hat_ebm_tf.data.read_source``: centre-cropped and resized (antialiased)
    to the model's size, and converted to its channel count.

    Args:
        spec: a data source (``parse_source``): ``digits:test``,
            ``tfds:NAME:SPLIT``, a folder, or a ``.npy``/``.npz`` file (array
            ``images``) of uint8 pixels or floats in [-1, 1].
        image_shape: the model's ``(H, W, C)``.
        limit: read at most this many images (None: all).

    Returns:
        ``[N, H, W, C]`` float32 in [-1, 1].

    Raises:
        DataError: a source that is missing, unreadable, empty or malformed.
    """
    from hat_ebm_tf.data import read_source  # TensorFlow: only when called (module doc)

    height, _, channels = image_shape
    return read_source(parse_source(spec, height, channels), limit=limit)


def load_scorer(path, batch_size):
    """The ``Scorer`` of the SavedModel at ``path`` (``hat_ebm_tf.serving.scoring.load_scorer``).

    Raises:
        ModelFileError: no SavedModel there (e.g. a run directory), or one
            without the scoring signatures or that TensorFlow cannot load.
    """
    # TensorFlow: only when called (module doc).
    import tensorflow as tf

    from hat_ebm_tf.serving import scoring

    try:
        return scoring.load_scorer(path, batch_size=batch_size)
    except (ValueError, OSError, tf.errors.OpError) as err:  # the stand-alone client raises plain errors
        message = err.message if isinstance(err, tf.errors.OpError) else str(err)
        raise ModelFileError(f"--model {os.fspath(path)}: {message}") from err


def check_sets(in_data, out_data, suite):
    """Raise ``ConfigError`` unless the sets name an in-distribution set and an OOD set (or a known suite)."""
    if suite not in (None, *SUITES):
        raise ConfigError(f"OOD suite {suite!r}: expected one of {list(SUITES)}")
    if not suite and not (in_data and out_data):
        raise ConfigError("give --in DATA and at least one --out DATA, or --suite digits")


def evaluate(scorer, in_data=None, out_data=(), suite=None, limit=None):
    """Score the in-distribution and OOD sets with a SavedModel, and their report.

    A calibrated SavedModel (``scorer.calibration``) is scored with
    ``ood_detect``, so that the report holds the detector's flags too.

    Args:
        scorer: a ``Scorer`` (``hat_ebm_tf.serving.scoring.load_scorer``).
        in_data: in-distribution data (``read_data``); with ``suite``, it
            replaces the suite's held-out digits.
        out_data: OOD data specs, added to the suite's sets.
        suite: ``"digits"`` (``ood_suite.digits_suite``) or None.
        limit: read at most this many images of each ``in_data``/``out_data``.

    Returns:
        ``ood_report``'s dict.

    Raises:
        ConfigError: no in-distribution or no OOD set, or the digits suite for a colour model.
        DataError: unreadable data; ValueError: images the model does not take.
    """
    from hat_ebm_tf.evaluation import ood_suite  # TensorFlow: only when called (module doc)

    check_sets(in_data, out_data, suite)
    in_set, out_sets = None, []
    if suite:
        if scorer.image_shape[-1] != 1:
            raise ConfigError(f"--suite digits needs a single-channel model; {scorer.path} takes {scorer.image_shape}")
        in_set, out_sets = ood_suite.digits_suite(scorer.image_shape[0])
    if in_data:
        in_set = (in_data, read_data(in_data, scorer.image_shape, limit))
    out_sets += [(spec, read_data(spec, scorer.image_shape, limit)) for spec in out_data]

    def scored(name, images):
        try:
            return scorer.detect(images) if scorer.calibration is not None else {"score": scorer(images)}
        except ValueError as err:  # shape or dtype the model does not take
            raise ValueError(f"{name}: {err}") from err

    return ood_report(
        scorer.path,
        (in_set[0], scored(*in_set)),
        [(name, scored(name, images)) for name, images in out_sets],
        calibration=scorer.calibration,
    )


def _histogram(values, edges):
    """Counts of ``values`` in ``edges``, values beyond either end counted in the end bins."""
    return np.histogram(np.clip(values, edges[0], edges[-1]), edges)[0]


def ood_report(model, in_set, out_sets, calibration=None, bins=40):
    """The OOD report of scored sets.

    Args:
        model: the SavedModel's path, for the record.
        in_set: ``(name, result)`` of the in-distribution set; ``result`` is
            a dict with ``score`` ``[N]`` and, for a calibrated model, ``is_ood`` ``[N]``.
        out_sets: list of ``(name, result)`` of the OOD sets, alike.
        calibration: the SavedModel's calibration dict (``Scorer.calibration``), or None.
        bins: histogram bins, shared by all sets over the 1st–99th percentile
            of the pooled scores (scores beyond fall in the end bins).

    Returns:
        dict (JSON-serialisable): ``model``, ``calibration``, ``in`` (data,
        num, mean_score, and ``flagged``: FPR at the threshold), ``out`` (per
        set: data, the ``ood_metrics``, mean_score, ``flagged``: TPR at the
        threshold, ``roc``: fpr and tpr lists), ``histogram`` (``edges`` and
        ``counts`` per set).
    """
    from hat_ebm_tf.serving.scoring import ood_metrics, roc_curve  # TensorFlow: only when called (module doc)

    in_name, in_result = in_set
    pooled = np.concatenate([in_result["score"], *(result["score"] for _, result in out_sets)])
    low, high = np.percentile(pooled, [1, 99])
    # Widened when (nearly) all scores are equal: bin edges must increase.
    edges = np.linspace(low, high, bins + 1) if high > low else np.linspace(low - 0.5, high + 0.5, bins + 1)

    def flagged(result):
        return float(np.mean(result["is_ood"])) if calibration else None

    report = {
        "model": str(model),
        "signature": "ood_detect" if calibration else "ood_score",
        "calibration": calibration,
        "in": {
            "data": in_name,
            "num": int(in_result["score"].size),
            "mean_score": float(np.mean(in_result["score"])),
            "flagged": flagged(in_result),
        },
        "out": [],
        "histogram": {"edges": edges.tolist(), "counts": {in_name: _histogram(in_result["score"], edges).tolist()}},
    }
    for name, result in out_sets:
        fpr, tpr = roc_curve(in_result["score"], result["score"])
        report["out"].append(
            {
                "data": name,
                **ood_metrics(in_result["score"], result["score"]),
                "mean_score": float(np.mean(result["score"])),
                "flagged": flagged(result),
                "roc": {"fpr": np.round(fpr, 6).tolist(), "tpr": np.round(tpr, 6).tolist()},
            }
        )
        report["histogram"]["counts"][name] = _histogram(result["score"], edges).tolist()
    return report


def format_report(report):
    """The report as a plain-text table, one row per OOD set (``flagged`` columns only when calibrated)."""
    calibrated = report["calibration"] is not None
    header = ["out-of-distribution", "N", "AUROC", "AUPR", "FPR@95%TPR", "mean score"]
    header += ["flagged (TPR)"] if calibrated else []
    rows = []
    for e in report["out"]:
        row = [e["data"], str(e["num_out"]), *(f"{e[k]:.4f}" for k in ("auroc", "aupr", "fpr_at_95_tpr"))]
        row += [f"{e['mean_score']:.4g}"] + ([f"{e['flagged']:.4f}"] if calibrated else [])
        rows.append(row)
    first = max(len(row[0]) for row in [header, *rows])
    lines = [f"{row[0]:<{first}}" + "".join(f"{cell:>15}" for cell in row[1:]) for row in [header, *rows]]
    inside = report["in"]
    head = [
        f"model {report['model']} ({report['signature']}; score: higher = more out-of-distribution)",
        f"in-distribution {inside['data']}: N = {inside['num']}, mean score {inside['mean_score']:.4g}",
    ]
    if calibrated:
        cal = report["calibration"]
        head.append(
            f"calibrated on {cal['data']} (n = {cal['size']}): is_ood when score > {cal['threshold']:.6g}; "
            f"flagged in-distribution (FPR) {inside['flagged']:.4f}, target {cal['fpr']:g}"
        )
    return "\n".join([*head, lines[0], "-" * len(lines[0]), *lines[1:]])


def save_figures(report, directory):
    """Draw the report's score histograms and ROC curves as PNGs in ``directory``.

    Returns:
        ``(histogram_path, roc_path)``: ``ood_histograms.png`` (all sets on one
        plot, with the stored threshold when calibrated) and ``ood_roc.png``
        (one curve per OOD set, with the detector's operating point).
    """
    threshold = report["calibration"]["threshold"] if report["calibration"] else None
    edges = np.asarray(report["histogram"]["edges"])
    # matplotlib: loaded only when called (see the module doc).
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # after its backend is set, and late for the same reason

    fig, ax = plt.subplots(figsize=(7, 4))
    for index, (name, counts) in enumerate(report["histogram"]["counts"].items()):
        density = np.asarray(counts) / max(1, np.sum(counts))
        ax.stairs(density, edges, label=name, linewidth=2.5 if index == 0 else 1.2, fill=index == 0, alpha=0.9)
    if threshold is not None:
        ax.axvline(threshold, color="k", linestyle="--", label=f"threshold (FPR {report['calibration']['fpr']:g})")
    ax.set_xlabel("score (energy H(x)); end bins hold everything beyond")
    ax.set_ylabel("fraction of the set")
    ax.legend(fontsize=7)
    fig.tight_layout()
    histogram_path = directory / HISTOGRAM_FILE
    fig.savefig(histogram_path, dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5, 5))
    for index, entry in enumerate(report["out"], start=1):
        color = f"C{index}"  # each set in its colour of the histograms (C0: the in-distribution set)
        ax.plot(entry["roc"]["fpr"], entry["roc"]["tpr"], color=color, label=f"{entry['data']} ({entry['auroc']:.3f})")
        if threshold is not None:
            ax.plot(report["in"]["flagged"], entry["flagged"], "o", color=color)
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set_xlabel("FPR (in-distribution flagged)")
    ax.set_ylabel("TPR (OOD flagged)")
    ax.set_title("ROC (AUROC); dots: the stored threshold" if threshold is not None else "ROC (AUROC)", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    roc_path = directory / ROC_FILE
    fig.savefig(roc_path, dpi=100)
    plt.close(fig)
    return histogram_path, roc_path
