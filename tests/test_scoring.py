"""The scorer and OOD metrics of ``hat_ebm_tf.serving.scoring``: known answers, scikit-learn, a SavedModel."""

import re

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_curve as sklearn_roc_curve

from hat_ebm_tf.serving.scoring import aupr, auroc, fpr_at_tpr, load_scorer, ood_metrics, roc_curve
from tests.helpers import sklearn_ood_metrics, tiny_images


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
    expected = sklearn_ood_metrics(inside, outside)
    assert auroc(inside, outside) == pytest.approx(expected["auroc"], abs=1e-12)
    assert aupr(inside, outside) == pytest.approx(expected["aupr"], abs=1e-12)
    assert fpr_at_tpr(inside, outside) == pytest.approx(expected["fpr_at_95_tpr"], abs=1e-12)


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


def test_load_scorer_names_what_it_cannot_use(exported, tmp_path):
    with pytest.raises(ValueError, match="no SavedModel at"):
        load_scorer(tmp_path)
    scorer = load_scorer(exported.version.parent, batch_size=2)
    assert scorer.path == exported.version and scorer.image_shape == (16, 16, 1)
    # Batches of 2, 2 and 1 against one of 5: convolutions and matmuls may round differently.
    np.testing.assert_allclose(scorer(tiny_images(5)), exported.model.energy(tiny_images(5)), rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match=re.escape("images have shape [5, 8, 8, 1]; expected [N, 16, 16, 1]")):
        scorer(np.zeros((5, 8, 8, 1), np.float32))
    with pytest.raises(ValueError, match="images have dtype int64; expected uint8"):
        scorer(np.zeros((5, 16, 16, 1), np.int64))
