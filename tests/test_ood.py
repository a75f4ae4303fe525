"""OOD metrics of ``hat_ebm_tf.serving.scoring`` on known answers and against scikit-learn; the OOD data loader."""

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.metrics import roc_curve as sklearn_roc_curve

from hat_ebm_tf.evaluation.ood import load_images
from hat_ebm_tf.serving.scoring import aupr, auroc, fpr_at_tpr, ood_metrics, roc_curve


def test_auroc_of_hand_counted_cases():
    # OOD 2.5 beats the in-distribution 0, 1, 2 but not 3; OOD 4 beats all: 7 of 8 pairs.
    assert auroc([0, 1, 2, 3], [2.5, 4]) == 0.875
    # Ties count ½: 1 vs 1 twice (½ + ½), 2 beats both 1s: 3 of 4.
    assert auroc([1, 1], [1, 2]) == 0.75


def test_auroc_of_two_gaussians_is_phi_of_the_separation_over_root_two():
    rng = np.random.default_rng(0)
    for shift in (0.0, 1.0, 2.0):
        got = auroc(rng.normal(0.0, 1.0, 20000), rng.normal(shift, 1.0, 20000))
        assert got == pytest.approx(norm.cdf(shift / np.sqrt(2.0)), abs=0.01)


def test_perfect_and_reversed_separation():
    assert ood_metrics([0, 1, 2], [3, 4]) == {
        "auroc": 1.0,
        "aupr": 1.0,
        "fpr_at_95_tpr": 0.0,
        "num_in": 3,
        "num_out": 2,
    }
    reversed_ = ood_metrics([3, 4], [0, 1, 2])
    assert reversed_["auroc"] == 0.0 and reversed_["fpr_at_95_tpr"] == 1.0


def test_aupr_of_a_hand_computed_case():
    # Descending: 2 (OOD): P = 1, R = ½; 1 (in); 0.5 (OOD): P = ⅔, R = 1; 0 (in). AP = ½·1 + ½·⅔.
    assert aupr([0, 1], [2, 0.5]) == pytest.approx(5 / 6)


def test_fpr_at_95_tpr_counts_the_ood_inputs_the_threshold_accepts():
    # The threshold 94 accepts the in-distribution 0..94 (95 %) and the OOD 90..94 (5 of 100).
    assert fpr_at_tpr(np.arange(100), np.arange(90, 190)) == 0.05


def test_metrics_match_scikit_learn_with_ties():
    rng = np.random.default_rng(1)
    inside, outside = rng.integers(0, 20, 300).astype(float), rng.integers(5, 25, 200).astype(float)
    is_ood, scores = np.r_[np.zeros(300), np.ones(200)], np.r_[inside, outside]
    assert auroc(inside, outside) == pytest.approx(roc_auc_score(is_ood, scores), abs=1e-12)
    assert aupr(inside, outside) == pytest.approx(average_precision_score(is_ood, scores), abs=1e-12)
    # FPR@95%TPR takes the in-distribution inputs as the positives, accepted when the score is low.
    fpr, tpr, _ = sklearn_roc_curve(1 - is_ood, -scores, drop_intermediate=False)
    assert fpr_at_tpr(inside, outside) == pytest.approx(fpr[np.argmax(tpr >= 0.95 - 1e-12)], abs=1e-12)


def test_roc_curve_matches_scikit_learn_with_ties():
    rng = np.random.default_rng(2)
    inside, outside = rng.integers(0, 20, 300).astype(float), rng.integers(5, 25, 200).astype(float)
    fpr, tpr = roc_curve(inside, outside)
    expected_fpr, expected_tpr, _ = sklearn_roc_curve(
        np.r_[np.zeros(300), np.ones(200)], np.r_[inside, outside], drop_intermediate=False
    )
    np.testing.assert_allclose(fpr, expected_fpr, atol=1e-12)
    np.testing.assert_allclose(tpr, expected_tpr, atol=1e-12)
    assert np.trapezoid(tpr, fpr) == pytest.approx(auroc(inside, outside), abs=1e-12)


@pytest.mark.parametrize(
    ("in_scores", "out_scores", "message"),
    [([], [1.0], "in_scores must be a non-empty 1-D array"), ([0.0], [[1.0]], "out_scores must be a non-empty 1-D"),
     ([0.0, np.nan], [1.0], "in_scores holds 1 non-finite scores")],
)  # fmt: skip
def test_bad_scores_are_named(in_scores, out_scores, message):
    with pytest.raises(ValueError, match=message):
        ood_metrics(in_scores, out_scores)


def test_load_images_reads_npz_and_npy(tmp_path):
    pixels = np.arange(2 * 16 * 16, dtype=np.uint8).reshape(2, 16, 16, 1)
    np.savez(tmp_path / "a.npz", images=pixels, labels=np.zeros(2))
    np.save(tmp_path / "b.npy", np.linspace(-1, 1, 3 * 4 * 4 * 3).reshape(3, 4, 4, 3))
    np.testing.assert_array_equal(load_images(tmp_path / "a.npz"), pixels)
    floats = load_images(tmp_path / "b.npy")
    assert floats.dtype == np.float32 and floats.shape == (3, 4, 4, 3)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("x.npz", {"pixels": np.zeros((1, 4, 4, 1), np.uint8)}, r"no array 'images' \(arrays: \['pixels'\]\)"),
        (
            "x.npy",
            np.zeros((4, 4, 1), np.uint8),
            r"float images in \[-1, 1\] \[N, H, W, 1 or 3\] with N > 0, got uint8 \[4,",
        ),
        ("x.npy", np.zeros((1, 4, 4, 1), np.int32), r"expected uint8 images or float images in \[-1, 1\].*got int32"),
        ("x.npy", np.full((1, 4, 4, 1), 255.0), r"float images must be in \[-1, 1\], got values in \[255, 255\]"),
        ("x.txt", None, "unsupported data file"),
        ("bad.npz", None, r"bad\.npz' is neither a \.npy nor a \.npz file"),
        ("missing.npy", None, "missing.npy' does not exist"),
    ],
)
def test_load_images_names_the_problem(tmp_path, name, content, message):
    path = tmp_path / name
    if isinstance(content, dict):
        np.savez(path, **content)
    elif content is not None:
        np.save(path, content)
    elif name != "missing.npy":
        path.write_text("1 2 3")
    with pytest.raises(ValueError, match=message):
        load_images(path)
