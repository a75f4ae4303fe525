"""Out-of-distribution scoring from an exported SavedModel, with TensorFlow and NumPy only.

This module imports TensorFlow and NumPy only, never Keras or the rest of
``hat_ebm_tf``: it is also the repository's stand-alone scoring client,
``export/hat_ebm_scoring.py`` (the same file), which can be copied next to a
serving stack and used without installing this package::

    from hat_ebm_scoring import load_scorer, ood_metrics

Scores follow the export's ``ood_score`` signature: higher means more
out-of-distribution. The metrics treat the out-of-distribution set as the
positive class for AUROC and AUPR, and follow the usual OOD-detection
convention for FPR@95%TPR (Hendrycks & Gimpel 2017; Liang et al. 2018): the
fraction of out-of-distribution inputs still accepted when the threshold
accepts 95% of the in-distribution inputs.

A SavedModel exported with ``hat-ebm export --calibrate`` is also a
calibrated detector: ``Scorer.detect`` runs its ``ood_detect`` signature
(``score``, the conformal ``p_value`` and ``is_ood``), and
``Scorer.calibration`` reads its ``assets.extra/ood_calibration.json``.
"""

import json
import os
from pathlib import Path

import numpy as np
import tensorflow as tf

SCORE_SIGNATURE = "ood_score"
DETECT_SIGNATURE = "ood_detect"
CALIBRATION_FILE = os.path.join("assets.extra", "ood_calibration.json")


def resolve_savedmodel(path):
    """The SavedModel directory for ``path``: a version directory, or a model directory (its highest version).

    Raises:
        ValueError: no SavedModel at ``path``.
    """
    path = Path(path)
    if (path / "saved_model.pb").is_file():
        return path
    versions = []
    if path.is_dir():
        versions = sorted(int(p.name) for p in path.iterdir() if p.name.isdigit() and (p / "saved_model.pb").is_file())
    if not versions:
        raise ValueError(
            f"no SavedModel at {os.fspath(path)!r} (expected saved_model.pb there, or in a version directory below it)"
        )
    return path / str(versions[-1])


class Scorer:
    """Scores images with a SavedModel's ``ood_score`` signature (or ``ood_score_uint8`` for uint8 input).

    Args:
        path: SavedModel version directory, or model directory (highest version).
        signature: float signature to use (``ood_score`` or ``energy``); its
            ``_uint8`` variant serves uint8 input.
        batch_size: images per signature call.

    Attributes:
        path: the SavedModel directory used.
        image_shape: ``(H, W, C)`` the signature expects.
        calibration: the export's OOD calibration (dict: ``data``, ``size``,
            ``sha256``, ``fpr``, ``threshold``, ...), or None when it was
            exported without ``--calibrate``.
    """

    def __init__(self, path, signature=SCORE_SIGNATURE, batch_size=256):
        self.path = resolve_savedmodel(path)
        self._loaded = tf.saved_model.load(os.fspath(self.path))
        missing = {signature, f"{signature}_uint8"} - set(self._loaded.signatures)
        if missing:
            raise ValueError(f"SavedModel {os.fspath(self.path)!r} has no signature {sorted(missing)}")
        if not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"batch_size={batch_size!r} must be a positive integer")
        self.signature = signature
        self.batch_size = batch_size
        spec = self._loaded.signatures[signature].structured_input_signature[1]["images"]
        self.image_shape = tuple(spec.shape[1:])
        calibration_file = self.path / CALIBRATION_FILE
        self.calibration = json.loads(calibration_file.read_text()) if calibration_file.is_file() else None

    def _run(self, signature, images):
        """Outputs of ``signature`` (its ``_uint8`` twin for uint8 ``images``), batch by batch: name → ``[N]``."""
        images = np.asarray(images)
        if images.dtype == np.uint8:
            name = f"{signature}_uint8"
        elif np.issubdtype(images.dtype, np.floating):
            name, images = signature, images.astype(np.float32, copy=False)
        else:
            raise ValueError(f"images have dtype {images.dtype}; expected uint8 in [0, 255] or float in [-1, 1]")
        if images.ndim != 4 or images.shape[1:] != self.image_shape:
            expected = ", ".join(map(str, self.image_shape))
            raise ValueError(f"images have shape {list(images.shape)}; expected [N, {expected}]")
        function = self._loaded.signatures[name]
        # No images, no call (the signatures refuse B = 0): empty outputs of the signature's dtypes.
        empty = {key: np.zeros([0], spec.dtype.as_numpy_dtype) for key, spec in function.structured_outputs.items()}
        batches = [
            {key: value.numpy() for key, value in function(images=tf.constant(images[i : i + self.batch_size])).items()}
            for i in range(0, len(images), self.batch_size)
        ]
        return {key: np.concatenate([value, *(batch[key] for batch in batches)]) for key, value in empty.items()}

    def __call__(self, images):
        """Scores of ``images``.

        Args:
            images: ``[N, H, W, C]`` uint8 pixels in [0, 255], or floats in [-1, 1].

        Returns:
            ``[N]`` float32 scores; higher = more out-of-distribution.
        """
        return next(iter(self._run(self.signature, images).values()))

    def detect(self, images):
        """The calibrated detector's verdicts on ``images`` (the ``ood_detect`` signature).

        Args:
            images: ``[N, H, W, C]`` uint8 pixels in [0, 255], or floats in [-1, 1].

        Returns:
            dict of ``[N]`` arrays: ``score`` (float32, as ``ood_score``),
            ``p_value`` (float32, the conformal p-value against the
            calibration scores) and ``is_ood`` (bool, ``p_value <= fpr``).

        Raises:
            ValueError: the SavedModel was exported without ``--calibrate``.
        """
        if DETECT_SIGNATURE not in self._loaded.signatures:
            raise ValueError(
                f"SavedModel {os.fspath(self.path)!r} is not calibrated (no {DETECT_SIGNATURE} signature): "
                "export it with `hat-ebm export RUN --calibrate DATA`"
            )
        return self._run(DETECT_SIGNATURE, images)


def load_scorer(path, signature=SCORE_SIGNATURE, batch_size=256):
    """Load a SavedModel written by ``hat-ebm export`` for scoring, without ``hat_ebm_tf``.

    Example::

        from hat_ebm_tf.serving import load_scorer, ood_metrics

        scorer = load_scorer("serving/digits")      # the highest version
        metrics = ood_metrics(scorer(in_images), scorer(out_images))

    Args:
        path: SavedModel version directory, or model directory (highest version).
        signature: ``"ood_score"`` (default) or ``"energy"``.
        batch_size: images per signature call.

    Returns:
        A ``Scorer``: ``scorer(images [N, H, W, C])`` → ``[N]`` scores.
    """
    return Scorer(path, signature, batch_size)


# ----------------------------------------------------------------- metrics
def _scores(values, name):
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or not len(values):
        raise ValueError(f"{name} must be a non-empty 1-D array of scores, got shape {list(values.shape)}")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name} holds {int(np.sum(~np.isfinite(values)))} non-finite scores")
    return values


def auroc(in_scores, out_scores):
    """Area under the ROC curve: the probability that an OOD score exceeds an in-distribution one (ties count ½).

    Args:
        in_scores: ``[N_in]`` scores of in-distribution inputs.
        out_scores: ``[N_out]`` scores of out-of-distribution inputs.

    Returns:
        float in [0, 1]; 1 separates perfectly, 0.5 is chance.
    """
    in_scores, out_scores = _scores(in_scores, "in_scores"), _scores(out_scores, "out_scores")
    # Mann-Whitney U from the average ranks of the pooled scores.
    _, inverse, counts = np.unique(np.concatenate([in_scores, out_scores]), return_inverse=True, return_counts=True)
    average_rank = np.cumsum(counts) - (counts - 1) / 2.0
    out_rank_sum = average_rank[inverse][len(in_scores) :].sum()
    n_out = len(out_scores)
    return float((out_rank_sum - n_out * (n_out + 1) / 2.0) / (len(in_scores) * n_out))


def aupr(in_scores, out_scores):
    """Area under the precision-recall curve with OOD as the positive class (average precision).

    The step-wise sum ``Σ (R_k − R_{k−1}) P_k`` over the distinct score
    thresholds, as ``sklearn.metrics.average_precision_score``.

    Returns:
        float in [0, 1]; chance level is the OOD fraction ``N_out / (N_in + N_out)``.
    """
    in_scores, out_scores = _scores(in_scores, "in_scores"), _scores(out_scores, "out_scores")
    scores = np.concatenate([in_scores, out_scores])
    positive = np.concatenate([np.zeros(len(in_scores)), np.ones(len(out_scores))])
    order = np.argsort(-scores, kind="mergesort")
    scores, positive = scores[order], positive[order]
    # One threshold per distinct score: the last index of each run of ties.
    last = np.r_[np.nonzero(np.diff(scores))[0], len(scores) - 1]
    true_positives = np.cumsum(positive)[last]
    precision = true_positives / (last + 1)
    recall = true_positives / len(out_scores)
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def roc_curve(in_scores, out_scores):
    """The ROC curve with OOD as the positive class: one point per distinct score threshold.

    A threshold ``t`` flags the inputs with ``score >= t``; the points run
    from flagging nothing, ``(0, 0)``, to flagging everything, ``(1, 1)``.

    Returns:
        ``(fpr, tpr)``: ``[K]`` float64 arrays, the fractions of in-distribution
        and of out-of-distribution inputs flagged, both non-decreasing.
    """
    in_scores, out_scores = _scores(in_scores, "in_scores"), _scores(out_scores, "out_scores")
    thresholds = np.unique(np.concatenate([in_scores, out_scores]))[::-1]
    flagged_in = len(in_scores) - np.searchsorted(np.sort(in_scores), thresholds, side="left")
    flagged_out = len(out_scores) - np.searchsorted(np.sort(out_scores), thresholds, side="left")
    return np.r_[0.0, flagged_in / len(in_scores)], np.r_[0.0, flagged_out / len(out_scores)]


def fpr_at_tpr(in_scores, out_scores, tpr=0.95):
    """False-positive rate at a true-positive rate, with in-distribution as the positive (accepted) class.

    The threshold ``t`` is the smallest score that accepts (score ≤ t) at least
    ``tpr`` of the in-distribution inputs; the result is the fraction of
    out-of-distribution inputs it also accepts.

    Returns:
        float in [0, 1]; lower is better.
    """
    in_scores, out_scores = _scores(in_scores, "in_scores"), _scores(out_scores, "out_scores")
    if not 0.0 < tpr <= 1.0:
        raise ValueError(f"tpr={tpr!r} must be in (0, 1]")
    accepted = int(np.ceil(tpr * len(in_scores) - 1e-9))
    threshold = np.sort(in_scores)[accepted - 1]
    return float(np.mean(out_scores <= threshold))


def ood_metrics(in_scores, out_scores):
    """AUROC, AUPR (OOD positive) and FPR@95%TPR of OOD scores (higher = more OOD).

    Returns:
        dict with ``auroc``, ``aupr``, ``fpr_at_95_tpr``, ``num_in``, ``num_out``.
    """
    return {
        "auroc": auroc(in_scores, out_scores),
        "aupr": aupr(in_scores, out_scores),
        "fpr_at_95_tpr": fpr_at_tpr(in_scores, out_scores, 0.95),
        "num_in": int(np.size(in_scores)),
        "num_out": int(np.size(out_scores)),
    }
