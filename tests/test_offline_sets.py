"""The offline data sets (``hat_ebm_tf.offline_sets``): fixed, seeded, labelled glyphs and photo patches."""

import numpy as np
import pytest

from hat_ebm_tf import offline_sets


def test_glyphs_are_fixed_labelled_and_their_splits_differ():
    train, labels = offline_sets.glyphs("train", return_labels=True)
    held_out, held_out_labels = offline_sets.glyphs("held_out", return_labels=True)
    assert train.shape == (5000, 32, 32, 1) and held_out.shape == (1000, 32, 32, 1) and train.dtype == np.uint8
    assert labels.dtype == np.int64 and set(np.unique(labels)) == set(range(len(offline_sets.GLYPH_CLASSES)))
    assert np.bincount(labels).min() > 100  # every class is well represented
    # White glyphs on black: a dark background, bright strokes, nothing blank.
    assert np.median(train) == 0 and train.max() == 255 and (train.reshape(5000, -1).max(axis=1) > 128).all()
    assert not train.flags.writeable  # the one in-memory copy cannot be changed by a reader
    # Another draw of fonts, heights, positions and strokes: no held-out image is a training image.
    flat = train.reshape(5000, -1).astype(np.int32)
    for image in held_out[:50].reshape(50, -1).astype(np.int32):
        assert np.abs(flat - image).sum(axis=1).min() > 0
    everything, all_labels = offline_sets.glyphs("all", return_labels=True)
    assert np.array_equal(everything, np.concatenate([train, held_out]))
    assert np.array_equal(all_labels, np.concatenate([labels, held_out_labels]))


def test_photo_patches_are_fixed_rgb_crops_of_the_shipped_photos():
    train, held_out = offline_sets.photo_patches("train"), offline_sets.photo_patches("held_out")
    assert train.shape == (5000, 32, 32, 3) and held_out.shape == (1000, 32, 32, 3) and train.dtype == np.uint8
    assert train.std() > 40 and 0 < train.mean() < 255  # photographs, not flat colour
    assert not np.array_equal(train[:1000], held_out)
    assert np.array_equal(offline_sets.photo_patches("all")[5000:], held_out)


@pytest.mark.parametrize("make", [offline_sets.glyphs, offline_sets.photo_patches])
def test_an_unknown_split_is_named(make):
    with pytest.raises(ValueError, match=r"split='test': expected one of \['train', 'held_out', 'all'\]"):
        make("test")
