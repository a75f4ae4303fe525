"""The quality report (``hat_ebm_tf.quality.report``): validated by ranking degraded copies of real images."""

import numpy as np
import pytest
import tensorflow as tf

from hat_ebm_tf.data import load_digits
from hat_ebm_tf.quality.reference import QualityReference
from hat_ebm_tf.quality.report import COPY_FLAG, format_report, quality_report, score


def _blurred(images, sigma):
    taps = np.arange(-int(2 * sigma), int(2 * sigma) + 1)
    kernel = np.exp(-0.5 * (taps / sigma) ** 2)
    kernel = np.outer(kernel, kernel) / kernel.sum() ** 2
    return tf.nn.conv2d(images, kernel[..., None, None].astype(np.float32), 1, "SAME").numpy()


@pytest.fixture(scope="module")
def halves(digits_reference):
    """A reference whose held-out images are the second half of the held-out digits; the first half to score."""
    images, labels = load_digits(16, return_labels=True, split="held_out")
    first, second = images[:398], images[398:]
    reference = QualityReference("digits", digits_reference.train, second, labelled="digits")
    return reference, first, labels[:398]


def test_the_measure_ranks_real_images_above_degraded_copies_and_flags_copies(halves):
    reference, images, labels = halves
    rng = np.random.default_rng(0)

    def fd(x):
        return score(x, reference)["frechet_distance"]

    real = fd(images)
    blurred = [fd(_blurred(images, sigma)) for sigma in (0.75, 1.5, 3.0)]
    noised = [
        fd(np.clip(images + a * rng.normal(size=images.shape), -1, 1).astype(np.float32)) for a in (0.1, 0.2, 0.4)
    ]
    assert real < blurred[0] < blurred[1] < blurred[2], (real, blurred)
    assert real < noised[0] < noised[1] < noised[2], (real, noised)
    one_class = score(images[labels == 3], reference)
    assert one_class["frechet_distance"] > 5 * real and max(one_class["class_fractions"]) > 0.9
    # Ten training images over and over: the copying check flags them; other people's digits it does not.
    repeated = score(np.repeat(reference.train[:10], 40, axis=0), reference)
    assert repeated["copying_share"] == 1.0 and score(images, reference)["copying_share"] < COPY_FLAG


def test_the_floor_is_far_better_than_the_gaussian_baseline(digits_reference):
    samples = load_digits(16, split="held_out")[:300]
    report = quality_report(samples, digits_reference, generated=samples[:50])
    floor, baseline = report["floor"], report["baseline"]
    assert floor["num_images"] == baseline["num_images"] == 300 and report["generator"]["num_images"] == 50
    assert 3 * floor["frechet_distance"] < baseline["frechet_distance"] and floor["copying_share"] is None
    assert floor["mean_confidence"] > baseline["mean_confidence"] + 0.05
    assert 5 * floor["classifier_frechet_distance"] < baseline["classifier_frechet_distance"]
    measure = report["measure"]
    assert measure["data"] == "digits:train" and measure["num_held_out"] == 797 and measure["num_train"] == 1000
    assert measure["held_out_confidence"] > 0.97 and measure["classes"] == list("0123456789")
    text = format_report(report)
    assert text.splitlines()[0].startswith("sample quality (digits:train, 16×16×1): FD and KID against 797")
    assert [line.split()[0] for line in text.splitlines()[3:7]] == ["samples", "floor", "baseline", "generator"]


def test_the_train_split_as_samples_is_the_floor_row_and_is_flagged_as_copies(digits_reference):
    report = quality_report(digits_reference.train, digits_reference)
    floor = dict(report["floor"], copying_share=report["samples"]["copying_share"])
    assert report["samples"] == floor  # all 1000 train digits, scored the same way
    assert report["samples"]["copying_share"] == 1.0
    assert "warning: 100% of the samples are nearer to a training image" in format_report(report)


def test_images_the_report_cannot_score_are_named(digits_reference):
    good = load_digits(16, split="held_out")[:4]
    with pytest.raises(ValueError, match=r"quality report: images have shape \[4, 16, 16, 3\]"):
        score(np.repeat(good, 3, axis=-1), digits_reference)
    with pytest.raises(ValueError, match=r"1 image\(s\); the Fréchet distance and KID need at least 2"):
        score(good[:1], digits_reference)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"image values above 1\.0"):
        score(good + 1.5, digits_reference)
