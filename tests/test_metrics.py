import numpy as np

from hat_ebm_tf.data import load_digits
from hat_ebm_tf.metrics import DIGITS_CLASSIFIER_TRAIN, digits_classifier_report


def test_real_held_out_digits_score_high_and_noise_scores_low():
    real = digits_classifier_report(load_digits(16)[DIGITS_CLASSIFIER_TRAIN:])
    assert real["classes_present"] == 10 and real["mean_confidence"] > 0.8
    assert sum(real["class_counts"]) == 1797 - DIGITS_CLASSIFIER_TRAIN
    blank = digits_classifier_report(np.full((50, 16, 16, 1), -1.0, "float32"))
    assert blank["classes_present"] == 1
    assert blank["mean_confidence"] < real["mean_confidence"]
