"""The labelled sets' classifiers (``hat_ebm_tf.quality.classifier``): accurate, deterministic, cached."""

import dataclasses
import json
import shutil

import numpy as np
import pytest

from hat_ebm_tf.data import load_digits
from hat_ebm_tf.quality import classifier as qc
from hat_ebm_tf.quality.cache import FitSettings

# A classifier that trains in a second, for the cache mechanics (the report uses LABELLED_SETS' settings).
TINY = dataclasses.replace(
    qc.LABELLED_SETS["digits"],
    name="tiny",
    settings=qc.ClassifierSettings(
        conv_filters=(4, 0), feature_dim=8, fit=FitSettings(epochs=1, batch_size=50, learning_rate=3e-3)
    ),
)


def test_the_digits_classifier_is_accurate_on_held_out_digits(quality_classifier):
    images, labels = load_digits(16, return_labels=True, split="held_out")
    probabilities, features = quality_classifier.classify(images)
    assert probabilities.shape == (797, 10) and np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    accuracy = np.mean(probabilities.argmax(axis=1) == labels)
    assert accuracy >= 0.97 and accuracy == pytest.approx(quality_classifier.held_out_accuracy)
    assert features.shape == (797, 64) and features.min() >= 0.0
    # Other sizes and colour go through the same preparation: 32×32 RGB digits classify alike.
    big = np.repeat(load_digits(32, split="held_out"), 3, axis=-1)
    assert np.mean(quality_classifier.classify(big)[0].argmax(axis=1) == labels) >= 0.95


def test_the_glyph_classifier_tells_36_classes_apart(glyph_classifier):
    assert glyph_classifier.held_out_accuracy >= 0.85 and len(glyph_classifier.labelled.classes) == 36


def test_the_cache_is_reused_and_a_corrupt_file_is_trained_again(tmp_path, quality_classifier, monkeypatch):
    # The session's classifier, copied to a new cache directory, is read back, not trained.
    (tmp_path / "copy").mkdir()
    shutil.copy(quality_classifier.path, tmp_path / "copy")
    reused = qc.classifier_for("digits", tmp_path / "copy")
    assert reused.loaded and reused.path.name == quality_classifier.path.name
    for a, b in zip(reused.model.get_weights(), quality_classifier.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)

    # Other settings are another file; training is deterministic; a damaged file is trained again and replaced.
    monkeypatch.setitem(qc.LABELLED_SETS, "tiny", TINY)
    assert qc.classifier_key(TINY) != qc.classifier_key(qc.LABELLED_SETS["digits"])
    first = qc.classifier_for("tiny", tmp_path / "a")
    assert not first.loaded and first.path.is_file() and not list((tmp_path / "a").glob(".*tmp"))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / first.path.name).write_bytes(first.path.read_bytes()[:300])  # truncated
    rebuilt = qc.classifier_for("tiny", tmp_path / "b")
    assert not rebuilt.loaded
    for a, b in zip(rebuilt.model.get_weights(), first.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    with np.load(rebuilt.path) as data:  # the replacement is whole
        assert json.loads(str(data["metadata"]))["key"] == qc.classifier_key(TINY)
