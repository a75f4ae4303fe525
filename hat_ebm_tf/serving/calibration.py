"""A calibrated out-of-distribution detector: split-conformal p-values of the energy score.

The score is the energy ``s = H(x)`` (higher = less likely = more
out-of-distribution). Given ``n`` scores ``c_1..c_n`` of in-distribution
images that the model never trained on (the calibration set), the conformal
p-value of a new image (Vovk et al. 2005; Angelopoulos & Bates 2021, "A gentle
introduction to conformal prediction", eq. 1 with the score as the
non-conformity measure) is::

    p(x) = (1 + #{i : c_i >= s(x)}) / (n + 1)

If ``x`` and the calibration images are exchangeable (drawn alike, e.g. i.i.d.
from one distribution), ``P(p(x) <= a) <= a`` for every level ``a``: flagging
``p(x) <= fpr`` as out-of-distribution flags at most a fraction ``fpr`` of
in-distribution inputs, on average over calibration sets, whatever the model.
(It is also at least ``fpr - 1/(n + 1)`` when scores do not tie.)

``p(x) <= fpr`` is the same as ``s(x) > t`` for the threshold ``t = c_(k)``,
the ``k``-th largest calibration score, where ``k`` is the largest integer with
``k / (n + 1) <= fpr``: a new score above ``t`` exceeds at least ``n - k + 1``
calibration scores, so at most ``k - 1`` are ``>=`` it.

``OODCalibration`` holds the sorted scores and that threshold;
``CalibrationModule`` carries them into a SavedModel as variables and
computes ``score``, ``p_value`` and ``is_ood`` in the graph (the ``ood_detect``
signatures of ``hat_ebm_tf.serving.signatures``).
"""

import dataclasses
import hashlib

import numpy as np
import tensorflow as tf

from hat_ebm_tf.data import read_source
from hat_ebm_tf.model import data_energies

DEFAULT_FPR = 0.05
P_VALUE_FORMULA = "(1 + #{calibration scores >= score}) / (n + 1)"


def conformal_rank(fpr, size):
    """The rank ``k`` of the threshold: the largest ``k`` in ``0..size`` with ``k / (size + 1) <= fpr``.

    The division is the float64 one the graph makes for ``p_value``, so the
    stored threshold and ``p_value <= fpr`` agree on every input.

    Args:
        fpr: target false-positive rate in (0, 1).
        size: number of calibration scores ``n`` (≥ 1).

    Returns:
        int ``k``; 0 when no input can reach ``p <= fpr`` (``fpr < 1 / (n + 1)``).
    """
    levels = np.arange(1, size + 1, dtype=np.float64) / np.float64(size + 1)
    return int(np.count_nonzero(levels <= np.float64(fpr)))


@dataclasses.dataclass(frozen=True, eq=False)
class OODCalibration:
    """Calibration scores of in-distribution images, and the threshold for a target false-positive rate.

    Build it with ``calibrate``.

    Attributes:
        scores: ``[n]`` float32 calibration scores, sorted ascending.
        fpr: target false-positive rate in (0, 1).
        threshold: ``c_(k)``, the ``k``-th largest score (``k = conformal_rank(fpr, n)``):
            ``is_ood`` is ``score > threshold``.
        sha256: hex SHA-256 of the calibration images (``images_sha256``).
        data: the calibration data source, as named on the command line.
    """

    scores: np.ndarray
    fpr: float
    threshold: float
    sha256: str
    data: str

    @property
    def size(self):
        """Number of calibration scores ``n``."""
        return int(self.scores.size)

    def to_dict(self):
        """The JSON summary (everything but the scores): data, size, sha256, fpr, threshold, p_value formula."""
        return {
            "data": self.data,
            "size": self.size,
            "sha256": self.sha256,
            "fpr": self.fpr,
            "threshold": self.threshold,
            "score": "ood_score (the energy H(x); higher = more out-of-distribution)",
            "p_value": P_VALUE_FORMULA,
            "is_ood": "p_value <= fpr, i.e. score > threshold",
        }


def calibrate(scores, fpr=DEFAULT_FPR, sha256="", data=""):
    """An ``OODCalibration`` from in-distribution scores.

    Args:
        scores: ``[n]`` scores of held-out in-distribution images (any order).
        fpr: target false-positive rate in (0, 1).
        sha256: hex SHA-256 of the calibration images.
        data: the calibration data source, for the record.

    Raises:
        ValueError: scores that are empty, not 1-D or not finite; an ``fpr``
            outside (0, 1); or too few scores to ever flag at ``fpr``
            (``n < 1 / fpr - 1``), naming how many are needed.
    """
    scores = np.asarray(scores, dtype=np.float32)
    if scores.ndim != 1 or not scores.size:
        raise ValueError(f"calibrate: scores must be a non-empty 1-D array, got shape {list(scores.shape)}")
    if not np.all(np.isfinite(scores)):
        raise ValueError(f"calibrate: {int(np.sum(~np.isfinite(scores)))} calibration scores are not finite")
    if isinstance(fpr, bool) or not isinstance(fpr, (int, float)) or not 0.0 < fpr < 1.0:
        raise ValueError(f"calibrate: fpr={fpr!r} must be a number in (0, 1)")
    rank = conformal_rank(fpr, scores.size)
    if rank == 0:
        needed = int(np.ceil(1.0 / fpr)) - 1
        raise ValueError(
            f"calibrate: {scores.size} calibration images cannot flag anything at fpr={fpr:g} (the smallest "
            f"p-value is 1/(n + 1)); use at least {needed} images or a larger fpr"
        )
    ordered = np.sort(scores)
    return OODCalibration(ordered, float(fpr), float(ordered[-rank]), sha256, data)


def images_sha256(images):
    """Hex SHA-256 of images: the bytes of their float32 values in C order, little-endian.

    Args:
        images: ``[N, H, W, C]`` (the images as the model sees them, in [-1, 1]).
    """
    return hashlib.sha256(np.ascontiguousarray(images, dtype="<f4").tobytes()).hexdigest()


def calibrate_model(model, source, fpr=DEFAULT_FPR, batch_size=256, data=None):
    """Score a data source with ``model.energy`` and calibrate on it.

    Args:
        model: a trained ``HatEBM``.
        source: ``DataSource`` of held-out in-distribution images, at the
            model's image size (read once, in order).
        fpr: target false-positive rate in (0, 1).
        batch_size: images per energy call.
        data: the source's name for the record (default: ``repr(source)``).

    Returns:
        ``OODCalibration``.
    """
    images = read_source(source, batch_size=batch_size)
    # float64 copies of the float32 energies; ``calibrate`` casts them back exactly.
    scores = data_energies(model, images, batch_size)
    return calibrate(scores, fpr, images_sha256(images), data or repr(source))


class CalibrationModule(tf.Module):
    """An ``OODCalibration`` as SavedModel variables, with the in-graph detector.

    Loaded back (``tf.saved_model.load(path).ood_calibration``), its
    variables read ``scores`` (sorted ascending), ``threshold``, ``fpr``,
    ``size`` and ``sha256``.

    Args:
        calibration: ``OODCalibration``.
    """

    def __init__(self, calibration):
        super().__init__(name="ood_calibration")
        self.scores = tf.Variable(calibration.scores, trainable=False, name="scores")
        self.threshold = tf.Variable(calibration.threshold, trainable=False, dtype=tf.float32, name="threshold")
        self.fpr = tf.Variable(calibration.fpr, trainable=False, dtype=tf.float64, name="fpr")
        self.size = tf.Variable(calibration.size, trainable=False, dtype=tf.int64, name="size")
        self.sha256 = tf.Variable(calibration.sha256, trainable=False, dtype=tf.string, name="sha256")

    def detect(self, scores):
        """The detector's outputs for scores ``[B]`` float32 (higher = more out-of-distribution).

        Returns:
            dict: ``score`` ``[B]`` float32 (the input), ``p_value`` ``[B]``
            float32 in ``[1/(n+1), 1]``, ``is_ood`` ``[B]`` bool (``p_value <= fpr``).
        """
        # searchsorted(side="left") counts the calibration scores < s; the rest are >= s.
        below = tf.searchsorted(self.scores, scores, side="left", out_type=tf.int64)
        at_or_above = self.size - below
        p_value = tf.cast(1 + at_or_above, tf.float64) / tf.cast(self.size + 1, tf.float64)
        return {"score": scores, "p_value": tf.cast(p_value, tf.float32), "is_ood": p_value <= self.fpr}
