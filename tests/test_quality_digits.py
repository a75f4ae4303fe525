"""The digits quality measure: a strong, fixed, cached classifier, and reference rows that make its figures readable."""

import dataclasses
import json
import shutil

import numpy as np
import pytest
import tensorflow as tf

from hat_ebm_tf.data import load_digits
from hat_ebm_tf.quality import digits as dq

# A classifier that trains in a second, for the cache mechanics (the measure itself uses dq.CLASSIFIER).
TINY = dataclasses.replace(dq.CLASSIFIER, conv_filters=(4, 0), feature_dim=8, epochs=1)


@pytest.fixture(scope="module")
def held_out_table(quality_classifier):
    """The table of the last 397 held-out digits, scored against the first 400: samples disjoint from the reference."""
    return dq.quality_table(load_digits(16, split="held_out")[400:], num_reference=400)


def test_classifier_is_accurate_on_held_out_digits(quality_classifier):
    images, labels = load_digits(16, return_labels=True, split="held_out")
    probabilities = quality_classifier.model.predict(images, verbose=0)
    assert probabilities.shape == (797, 10) and np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    accuracy = np.mean(probabilities.argmax(axis=1) == labels)
    assert accuracy >= 0.97 and accuracy == pytest.approx(quality_classifier.held_out_accuracy)
    features = quality_classifier.features.predict(images, verbose=0)
    assert features.shape == (797, dq.CLASSIFIER.feature_dim) and features.min() >= 0.0


def test_cache_is_reused_and_a_corrupt_file_is_trained_again(tmp_path, quality_classifier):
    # The session's classifier, copied to a new cache directory, is read back, not trained.
    (tmp_path / "copy").mkdir()
    shutil.copy(quality_classifier.path, tmp_path / "copy")
    reused = dq.digits_classifier(tmp_path / "copy")
    assert reused.loaded and reused.path.name == quality_classifier.path.name
    for a, b in zip(reused.model.get_weights(), quality_classifier.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)

    # Other settings are another file; training is deterministic; a damaged file is trained again and replaced.
    assert dq.classifier_key(TINY) != dq.classifier_key()
    first = dq.digits_classifier(tmp_path / "a", TINY)
    assert not first.loaded and first.path.is_file() and not list((tmp_path / "a").glob(".*tmp"))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / first.path.name).write_bytes(first.path.read_bytes()[:300])  # truncated
    rebuilt = dq.digits_classifier(tmp_path / "b", TINY)
    assert not rebuilt.loaded
    for a, b in zip(rebuilt.model.get_weights(), first.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    with np.load(rebuilt.path) as data:  # the replacement is whole
        assert json.loads(str(data["metadata"]))["key"] == dq.classifier_key(TINY)


def test_a_cache_that_is_a_file_costs_a_warning_and_nothing_else(tmp_path, monkeypatch, caplog):
    # As `HAT_EBM_CACHE=FILE hat-ebm sample --quality`: the classifier is trained, used, and not cached.
    (tmp_path / "file").write_text("not a directory")
    monkeypatch.setenv(dq.CACHE_ENV, str(tmp_path / "file"))
    with caplog.at_level("WARNING"):
        classifier = dq.digits_classifier(settings=TINY)
    assert not classifier.loaded and classifier.classify(load_digits(16)[:3])[0].shape == (3, 10)
    assert "cannot cache the digits classifier in" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"] and (tmp_path / "file").read_text()


def test_floor_is_far_better_than_the_gaussian_baseline(held_out_table):
    floor, baseline = held_out_table["floor"], held_out_table["baseline"]
    assert floor["num_images"] == baseline["num_images"] == 397
    assert 5 * floor["frechet_distance"] < baseline["frechet_distance"]
    assert 5 * floor["kid"] < baseline["kid"]
    assert floor["mean_confidence"] > baseline["mean_confidence"] + 0.05
    assert min(floor["class_fractions"]) > 0.05 and max(floor["class_fractions"]) < 0.15


def test_real_held_out_digits_score_like_the_floor(held_out_table):
    samples, floor = held_out_table["samples"], held_out_table["floor"]
    assert samples["frechet_distance"] < 2 * floor["frechet_distance"]
    assert samples["kid"] < floor["kid"] + 0.02
    measure = held_out_table["measure"]
    assert samples["mean_confidence"] == pytest.approx(measure["held_out_confidence"], abs=0.01)
    assert abs(samples["mean_confidence"] - floor["mean_confidence"]) < 0.03
    assert measure["num_reference"] == 400 and measure["kid_subset_size"] == 397


def test_the_train_split_as_samples_is_the_floor_row(quality_classifier):
    report = dq.quality_table(load_digits(16, split="train"))
    assert report["samples"] == report["floor"]  # all 1000 train digits, scored the same way
    assert report["floor"]["num_images"] == 1000 and report["baseline"]["num_images"] == 1000


def test_one_repeated_digit_is_one_class(quality_classifier):
    images, labels = load_digits(16, return_labels=True, split="held_out")
    three = images[np.flatnonzero(labels == 3)[0]]
    report = dq.quality_report(np.repeat(three[None], 50, axis=0))
    assert report["class_counts"] == [0, 0, 0, 50, 0, 0, 0, 0, 0, 0]
    assert report["class_fractions"][3] == 1.0 and report["num_images"] == 50


def test_other_sizes_and_rgb_images(quality_classifier):
    grey = load_digits(32, split="train")[:120]
    report = dq.quality_table(grey)
    assert report["measure"]["image_size"] == 32
    assert report["floor"]["frechet_distance"] < report["baseline"]["frechet_distance"]
    rgb = dq.quality_report(np.repeat(grey, 3, axis=-1))
    for key in ("mean_confidence", "frechet_distance", "kid"):
        assert rgb[key] == pytest.approx(report["samples"][key], rel=1e-4, abs=1e-6)
    assert rgb["class_counts"] == report["samples"]["class_counts"]


def test_gaussian_baseline_is_fixed_and_in_range():
    a, b = dq.gaussian_baseline(16, 20), dq.gaussian_baseline(16, 20)
    assert a.shape == (20, 16, 16, 1) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert a.min() >= -1.0 and a.max() <= 1.0 and a.min() < -0.9 and a.max() > 0.9


def test_format_shows_three_rows_and_what_was_measured(held_out_table):
    text = dq.format_quality_table(held_out_table)
    lines = text.splitlines()
    assert "held-out accuracy" in lines[0] and "400 held-out digits" in lines[0]
    rows = {line.split()[0]: line.split() for line in lines[2:5]}
    assert set(rows) == set(dq.ROWS)
    floor = held_out_table["floor"]
    assert rows["floor"][1] == "397" and rows["floor"][2] == f"{floor['mean_confidence']:.3f}"
    assert rows["floor"][3] == f"{floor['frechet_distance']:.3f}"


def test_bad_input_is_named(quality_classifier):
    good = load_digits(16, split="held_out")[:4]
    with pytest.raises(ValueError, match="dtype uint8; expected float in"):
        dq.quality_report(np.zeros((4, 16, 16, 1), np.uint8))
    with pytest.raises(ValueError, match="rank 3"):
        dq.quality_report(good[..., 0])
    with pytest.raises(ValueError, match="2 channels"):
        dq.quality_report(np.repeat(good, 2, axis=-1))
    with pytest.raises(ValueError, match="are 16×12; expected square"):
        dq.quality_report(good[:, :, :12])
    with pytest.raises(ValueError, match="1 image"):
        dq.quality_table(good[:1])
    with pytest.raises(ValueError, match="num_reference=1000 must be an integer in"):
        dq.quality_report(good, num_reference=1000)
    with pytest.raises(tf.errors.InvalidArgumentError, match="values above 1"):
        dq.quality_report(good + 1.5)
