"""Out-of-distribution evaluation: the offline digits OOD suite, and the report of `hat-ebm ood`.

**The suite** (``digits_suite``) needs no download: held-out digits (the
``test`` split, which neither training nor calibration saw) against six sets
built from what scikit-learn and matplotlib ship:

- ``rotated``: the same held-out digits turned by 90° or 270°;
- ``inverted``: the same digits, black on white (``-x``);
- ``uniform noise``: pixels i.i.d. uniform in [-1, 1];
- ``constant``: one grey level per image, evenly spaced from black to white;
- ``photo patches``: grey square crops of scikit-learn's sample photos
  (``china.jpg``, ``flower.jpg``), resized;
- ``letters``: A–Z and a–z rendered with four DejaVu fonts that matplotlib
  ships, brought to the digits' 8×8, 17-grey-level format first.

**The report** (``ood_report``) holds, per OOD set, AUROC, AUPR (OOD
positive), FPR@95%TPR and, for a calibrated SavedModel, the fraction of the set
that ``ood_detect`` flags (its TPR at the stored threshold), with the fraction
of in-distribution images flagged (its FPR). It also holds the ROC curves and
the score histograms, which ``save_figures`` draws as PNGs.
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf

from export.scoring import ood_metrics, roc_curve
from hat_ebm_tf.data import DataSource, read_source

SUITE_SEED = 0
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
LETTER_FONTS = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf")
HISTOGRAM_FILE = "ood_histograms.png"
ROC_FILE = "ood_roc.png"
REPORT_FILE = "ood_report.json"
# The scikit-learn digits: 8×8 pixels of 17 grey levels (0..16).
_DIGIT_SIDE, _DIGIT_LEVELS = 8, 16


def _resize(images, size):
    """``[N, h, w, 1]`` in [-1, 1] → ``[N, size, size, 1]``, with the data pipeline's antialiased bilinear filter."""
    resized = tf.image.resize(np.asarray(images, np.float32), (size, size), method="bilinear", antialias=True)
    return np.clip(resized.numpy(), -1.0, 1.0)


def _as_digit_format(pixels):
    """Grey ``[N, 8, 8]`` in [0, 1] → the digits' 17 levels, ``[N, 8, 8, 1]`` in [-1, 1] as ``load_digits``."""
    levels = np.round(np.clip(pixels, 0.0, 1.0) * _DIGIT_LEVELS)
    return (levels / (_DIGIT_LEVELS / 2) - 1.0).astype(np.float32)[..., None]


def rendered_letters(fonts=LETTER_FONTS, letters=LETTERS):
    """Letters rendered with fonts that matplotlib ships, in the digits' 8×8 format.

    Each glyph is drawn white on black, centred on a square canvas with a
    one-eighth margin (the digits fill their 8×8 box likewise), averaged down
    to 8×8 and quantised to 17 grey levels.

    Returns:
        ``[len(fonts) · len(letters), 8, 8, 1]`` float32 in [-1, 1].
    """
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    directory = font_manager.findfont("DejaVu Sans").rpartition("/")[0]
    glyphs = []
    for name in fonts:
        font = FT2Font(f"{directory}/{name}")
        font.set_size(48, 72)
        for letter in letters:
            font.set_text(letter, 0.0)
            font.draw_glyphs_to_bitmap()
            glyph = np.asarray(font.get_image(), np.float32) / 255.0
            rows, cols = np.nonzero(glyph > 0)
            glyph = glyph[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
            side = int(max(glyph.shape) * 1.25)
            canvas = np.zeros((side, side), np.float32)
            top, left = (side - glyph.shape[0]) // 2, (side - glyph.shape[1]) // 2
            canvas[top : top + glyph.shape[0], left : left + glyph.shape[1]] = glyph
            small = tf.image.resize(canvas[None, ..., None], (_DIGIT_SIDE, _DIGIT_SIDE), method="area")
            glyphs.append(small.numpy()[0, ..., 0])
    return _as_digit_format(np.stack(glyphs))


def photo_patches(count, size, seed=SUITE_SEED):
    """Grey square crops of scikit-learn's sample photos, resized to ``size``.

    Crops have a random side from 16 to 128 pixels and a random position, on
    ``china.jpg`` and ``flower.jpg`` alternately.

    Returns:
        ``[count, size, size, 1]`` float32 in [-1, 1].
    """
    from sklearn.datasets import load_sample_images

    grey = [tf.image.rgb_to_grayscale(photo).numpy() for photo in load_sample_images().images]
    photos = [photo.astype(np.float32) / 127.5 - 1.0 for photo in grey]
    rng = np.random.default_rng(seed)
    patches = []
    for i in range(count):
        photo = photos[i % len(photos)]
        side = int(rng.integers(16, 129))
        top, left = rng.integers(0, photo.shape[0] - side + 1), rng.integers(0, photo.shape[1] - side + 1)
        patches.append(_resize(photo[None, top : top + side, left : left + side], size)[0])
    return np.stack(patches)


def digits_suite(image_size=16, seed=SUITE_SEED):
    """The offline OOD suite of the digits model.

    Args:
        image_size: the model's height and width (≥ 8); single channel.
        seed: seed of the noise and of the photo crops.

    Returns:
        ``(in_distribution, out_sets)``: ``("digits:test", [N, S, S, 1])`` and a
        list of ``(name, [M, S, S, 1])``; all float32 in [-1, 1]. N = 398;
        each set but ``letters`` (208) has N images too.
    """
    held_out = read_source(DataSource("digits", split="test", image_size=image_size, channels=1))
    count = len(held_out)
    rng = np.random.default_rng(seed)
    turns = np.where(np.arange(count) % 2 == 0, 1, 3)
    greys = np.linspace(-1.0, 1.0, count, dtype=np.float32)[:, None, None, None]
    out_sets = [
        ("rotated", np.stack([np.rot90(image, k, axes=(0, 1)) for image, k in zip(held_out, turns, strict=True)])),
        ("inverted", -held_out),
        ("uniform noise", rng.uniform(-1.0, 1.0, held_out.shape).astype(np.float32)),
        ("constant", np.broadcast_to(greys, held_out.shape).copy()),
        ("photo patches", photo_patches(count, image_size, seed)),
        ("letters", _resize(rendered_letters(), image_size)),
    ]
    return ("digits:test", held_out), out_sets


# ------------------------------------------------------------------ report
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
