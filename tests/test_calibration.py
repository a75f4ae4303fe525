"""The calibrated OOD detector: conformal p-values and threshold, `hat-ebm export --calibrate`, `ood_detect` in a
fresh process without hat_ebm_tf, its FPR guarantee on unseen digits, and the `hat-ebm ood` report of the detector.
"""

import json
from types import SimpleNamespace

import keras
import matplotlib.pyplot as plt
import numpy as np
import pytest
import tensorflow as tf
from scipy.stats import betabinom

from hat_ebm_tf.data import model_range_to_uint8, read_source
from hat_ebm_tf.serving.calibration import CalibrationModule, calibrate, conformal_rank, images_sha256
from hat_ebm_tf.serving.savedmodel import export_model
from hat_ebm_tf.serving.scoring import load_scorer
from hat_ebm_tf.sources import DataSource
from tests.helpers import (
    HAT_EBM,
    SUITE_SETS,
    finish_process,
    main_in,
    start_process,
    start_without_hat_ebm_tf,
    tiny_model,
)


def _brute_p_values(calibration_scores, scores):
    """The conformal p-value by its definition, one score at a time."""
    calibration_scores = np.asarray(calibration_scores)
    return np.array([(1 + np.sum(calibration_scores >= s)) / (len(calibration_scores) + 1) for s in scores])


# ------------------------------------------------------------ the conformal math
@pytest.mark.parametrize("fpr", [0.05, 0.1, 0.25, 0.5])
def test_p_values_and_threshold_agree_with_the_definition_on_every_score(fpr):
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 40, 199).astype(np.float32)  # many ties
    calibration = calibrate(rng.permutation(scores), fpr)
    np.testing.assert_array_equal(calibration.scores, np.sort(scores))
    # Every calibration score, every midpoint, and scores beyond both ends.
    probes = np.unique(np.r_[scores, scores + 0.5, -1.0, 100.0]).astype(np.float32)
    detected = {k: v.numpy() for k, v in CalibrationModule(calibration).detect(tf.constant(probes)).items()}
    expected = _brute_p_values(scores, probes)
    np.testing.assert_allclose(detected["p_value"], expected, rtol=1e-6)
    np.testing.assert_array_equal(detected["is_ood"], expected <= fpr)
    np.testing.assert_array_equal(detected["is_ood"], probes > calibration.threshold)
    np.testing.assert_array_equal(detected["score"], probes)
    assert detected["is_ood"].any() and not detected["is_ood"].all()


def test_the_threshold_is_the_kth_largest_calibration_score():
    # n = 19, fpr 0.1: k = 2 (2/20 <= 0.1 < 3/20), so the threshold is the second largest score.
    assert conformal_rank(0.1, 19) == 2 and conformal_rank(0.0999, 19) == 1 and conformal_rank(0.04, 19) == 0
    assert calibrate(np.arange(19.0), 0.1).threshold == 17.0


@pytest.mark.parametrize(
    ("scores", "fpr", "message"),
    [([], 0.05, r"non-empty 1-D array, got shape \[0\]"), ([0.0, np.inf], 0.05, "1 calibration scores are not finite"),
     ([0.0], 0.0, r"fpr=0.0 must be a number in \(0, 1\)"), ([0.0], 1.0, r"fpr=1.0 must be a number in \(0, 1\)"),
     (np.arange(10.0), 0.05, "10 calibration images cannot flag anything at fpr=0.05 .* at least 19 images")],
)  # fmt: skip
def test_calibrate_names_what_it_cannot_use(scores, fpr, message):
    with pytest.raises(ValueError, match=message):
        calibrate(scores, fpr)


# ---------------------------------------------------- export, serve, report
@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    """A tiny model exported with `hat-ebm export --calibrate digits`, and its `hat-ebm ood --suite digits` report."""
    root = tmp_path_factory.mktemp("calibrated")
    keras.utils.set_random_seed(0)  # the same network, and so the same flagged digits, on every run
    model = tiny_model()
    model.save(root / "tiny.keras")
    export = ("export", "tiny.keras", "--base-path", "serving", "--name", "tiny", "--calibrate", "digits")
    stdout = main_in(root, *export)  # in this process: the `exported` fixture runs the installed `hat-ebm export`
    test_digits = read_source(DataSource("digits", split="test"))
    np.savez(root / "extra.npz", images=model_range_to_uint8(test_digits[:50]))
    report = ("ood", "--model", "serving/tiny", "--suite", "digits", "--out", "extra.npz", "--report-dir", "report")
    ood = start_process(HAT_EBM, *report, cwd=root)
    np.save(root / "test_digits.npy", test_digits)
    fresh = start_without_hat_ebm_tf(root, FRESH_PROCESS, "serving/tiny", "test_digits.npy", "fresh.npz")
    return SimpleNamespace(
        root=root,
        model=model,
        version=root / "serving" / "tiny" / "1",
        export_stdout=stdout,
        test_digits=test_digits,
        ood_stdout=finish_process(ood),
        fresh_stdout=finish_process(fresh),
    )


# Run by start_without_hat_ebm_tf: TensorFlow, NumPy and the stand-alone client only.
FRESH_PROCESS = """
model_dir, images, out = sys.argv[1:]
images = np.load(images)
scorer = load_scorer(model_dir)
detected = scorer.detect(images)
loaded = tf.saved_model.load(str(scorer.path))
pixels = np.round((images + 1) * 127.5).astype(np.uint8)
on_grid = pixels.astype(np.float32) / np.float32(127.5) - np.float32(1.0)
raw = loaded.signatures["ood_detect_uint8"](images=tf.constant(pixels))
np.savez(
    out,
    **detected,
    scores=scorer(images),
    uint8_p_value=raw["p_value"].numpy(),
    uint8_is_ood=raw["is_ood"].numpy(),
    on_grid_p_value=scorer.detect(on_grid)["p_value"],
    calibration_scores=loaded.ood_calibration.scores.numpy(),
    threshold=loaded.ood_calibration.threshold.numpy(),
)
print(f"flagged {detected['is_ood'].sum()} of {len(images)}; calibration {scorer.calibration}")
"""


@pytest.fixture(scope="module")
def plain(calibrated):
    """The same model exported without --calibrate: its version directory."""
    return export_model(calibrated.model, calibrated.root / "plain", "tiny")


def test_export_stores_the_calibration_of_the_held_out_digits(calibrated, plain):
    calibration_digits = read_source(DataSource("digits", split="calibration"))
    # Sorted, by definition: 20 = 0.05 · (399 + 1) of them reach p <= 0.05, so the 20th largest is the threshold.
    expected = np.sort(calibrated.model.energy(calibration_digits).numpy())
    stored = json.loads((calibrated.version / "assets.extra" / "ood_calibration.json").read_text())
    assert stored["data"] == "digits:calibration" and stored["size"] == 399 and stored["fpr"] == 0.05
    assert stored["sha256"] == images_sha256(calibration_digits)
    assert stored["threshold"] == pytest.approx(expected[-20], abs=1e-6)
    out = np.load(calibrated.root / "fresh.npz")
    np.testing.assert_allclose(out["calibration_scores"], expected, atol=1e-6)
    assert out["threshold"] == np.float32(stored["threshold"])
    assert (
        "is_ood when score >" in calibrated.export_stdout and "ood_detect, ood_detect_uint8" in calibrated.export_stdout
    )
    # The calibration adds two signatures and changes none of the others.
    loaded = tf.saved_model.load(str(calibrated.version))
    uncalibrated = tf.saved_model.load(str(plain))
    assert set(loaded.signatures) - set(uncalibrated.signatures) == {"ood_detect", "ood_detect_uint8"}
    assert not (plain / "assets.extra" / "ood_calibration.json").exists()
    for name, function in uncalibrated.signatures.items():
        assert loaded.signatures[name].structured_outputs == function.structured_outputs, name
        assert loaded.signatures[name].structured_input_signature == function.structured_input_signature, name


def test_ood_detect_in_a_fresh_process_holds_the_fpr_on_unseen_digits(calibrated):
    """The guarantee: at most fpr of unseen in-distribution digits flagged, up to the beta-binomial spread.

    With ``k = 20`` of ``n = 399`` calibration digits above the threshold, the
    flagged fraction of exchangeable images is ``q ~ Beta(k, n + 1 - k)`` (mean
    ``k / (n + 1) <= 0.05``), and the flagged count of ``m`` test digits is
    beta-binomial. The count must lie in its central 99.8 % interval.
    """
    out = np.load(calibrated.root / "fresh.npz")
    m, n, k = len(calibrated.test_digits), 399, 20  # k = 0.05 · (n + 1)
    flagged = int(out["is_ood"].sum())
    low, high = betabinom.ppf([0.001, 0.999], m, k, n + 1 - k)
    assert low <= flagged <= high, (flagged, low, high)
    # The detector's p-values are the definition's, against the stored scores.
    np.testing.assert_allclose(out["p_value"], _brute_p_values(out["calibration_scores"], out["score"]), rtol=1e-6)
    np.testing.assert_array_equal(out["is_ood"], out["p_value"] <= 0.05)
    np.testing.assert_allclose(out["score"], out["scores"], rtol=1e-6)  # score is ood_score's
    np.testing.assert_allclose(out["score"], calibrated.model.energy(calibrated.test_digits), atol=1e-5)
    # The uint8 twin on pixels is the float signature on the same pixels (up to a 1-ulp energy: one rank).
    np.testing.assert_allclose(out["uint8_p_value"], out["on_grid_p_value"], atol=1 / 400 + 1e-6)


def test_ood_command_reports_the_suite_and_the_detector(calibrated):
    report = json.loads((calibrated.root / "report" / "ood_report.json").read_text())
    assert report["signature"] == "ood_detect" and report["calibration"]["size"] == 399
    assert [entry["data"] for entry in report["out"]] == [*SUITE_SETS, "extra.npz"]
    fresh = np.load(calibrated.root / "fresh.npz")
    assert report["in"]["data"] == "digits:test" and report["in"]["num"] == 398
    assert report["in"]["flagged"] == pytest.approx(fresh["is_ood"].mean())
    extra = report["out"][-1]  # the first 50 test digits again, as uint8 pixels
    assert extra["flagged"] == pytest.approx(fresh["uint8_is_ood"][:50].mean(), abs=0.021)
    for entry in report["out"]:
        assert entry["roc"]["fpr"][0] == 0.0 and entry["roc"]["tpr"][-1] == 1.0
        assert np.trapezoid(entry["roc"]["tpr"], entry["roc"]["fpr"]) == pytest.approx(entry["auroc"], abs=1e-4)
    counts = report["histogram"]["counts"]
    assert list(counts) == ["digits:test", *SUITE_SETS, "extra.npz"] and sum(counts["letters"]) == 208
    for name in ("ood_histograms.png", "ood_roc.png"):
        assert plt.imread(calibrated.root / "report" / name).ndim == 3, name
    stdout = calibrated.ood_stdout
    assert "flagged (TPR)" in stdout and "flagged in-distribution (FPR)" in stdout and "photo patches" in stdout


def test_detect_on_an_uncalibrated_savedmodel_names_the_fix(calibrated, plain):
    scorer = load_scorer(plain)
    assert scorer.calibration is None
    with pytest.raises(ValueError, match=r"is not calibrated \(no ood_detect signature\).*--calibrate DATA"):
        scorer.detect(calibrated.test_digits[:2])
