import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

from hat_ebm_tf import offline_sets
from hat_ebm_tf.data import (
    DataError,
    array_dataset,
    center_crop,
    distributed_dataset,
    image_dataset,
    load_digits,
    model_range_to_uint8,
    read_source,
    uint8_to_model_range,
)
from hat_ebm_tf.distribute import mirrored_strategy
from hat_ebm_tf.sources import TFDS_BUILDERS, DataSource, parse_source


def _first_batch(source, batch=4, training=True):
    return next(iter(image_dataset(source, batch, training=training))).numpy()


def _check(images, batch, size, channels):
    assert images.shape == (batch, size, size, channels) and images.dtype == np.float32
    assert images.min() >= -1.0 and images.max() <= 1.0


@pytest.mark.parametrize("size", [8, 16, 32])
def test_digits_shape_dtype_range(size):
    images, labels = load_digits(size, return_labels=True)
    assert images.shape == (1000, size, size, 1) and images.dtype == np.float32
    assert images.min() >= -1.0 and images.max() <= 1.0 and images.max() > 0.9
    assert sorted(set(labels.tolist())) == list(range(10))
    _check(_first_batch(DataSource("digits", image_size=size)), 4, size, 1)


def test_digits_splits_are_fixed_and_only_the_train_split_trains():
    everything, labels = load_digits(16, return_labels=True, split="all")
    train, train_labels = load_digits(16, return_labels=True, split="train")
    held_out, held_out_labels = load_digits(16, return_labels=True, split="held_out")
    assert len(train) == 1000 and len(held_out) == 797
    np.testing.assert_array_equal(np.concatenate([train, held_out]), everything)
    np.testing.assert_array_equal(np.concatenate([train_labels, held_out_labels]), labels)
    read = {}
    for spec, split in [("digits", "train"), ("digits:held_out", "held_out"), ("digits:all", "all")]:
        source = parse_source(spec, 8, 1)
        assert source.split == split
        read[split] = np.concatenate([b.numpy() for b in image_dataset(source, 500, training=False)])
    assert [len(read[split]) for split in ("train", "held_out", "all")] == [1000, 797, 1797]
    # The training stream of `digits` holds train digits only (an epoch of 1000 is each of them once).
    epoch = next(iter(image_dataset(parse_source("digits", 8, 1), 1000, seed=3))).numpy()
    assert {im.tobytes() for im in epoch} == {im.tobytes() for im in read["train"]}
    with pytest.raises(ValueError, match=r"split='tests': expected one of \['train', 'held_out', 'calibration'"):
        load_digits(16, split="tests")
    with pytest.raises(DataError, match=r"digits split='tests'"):
        parse_source("digits:tests", 16, 1)


def test_the_held_out_digits_split_into_disjoint_calibration_and_test_halves():
    held_out = load_digits(8, split="held_out")
    calibration, test = load_digits(8, split="calibration"), load_digits(8, split="test")
    assert (len(calibration), len(test)) == (399, 398)
    np.testing.assert_array_equal(calibration, held_out[0::2])
    np.testing.assert_array_equal(test, held_out[1::2])


@pytest.mark.parametrize("name", TFDS_BUILDERS)
@pytest.mark.parametrize(("size", "channels"), [(32, 3), (16, 1)])
def test_tfds_builders_through_mock_data(name, size, channels, tmp_path):
    with tfds.testing.mock_data(num_examples=6):
        source = parse_source(f"tfds:{name}:train", size, channels, data_dir=str(tmp_path))
        _check(_first_batch(source), 4, size, channels)
        _check(_first_batch(source, batch=4, training=False), 4, size, channels)


def test_unprepared_tfds_names_builder_directory_and_how(tmp_path):
    with pytest.raises(DataError, match=r"'cifar10' is not prepared in .*cifar10.*tfds build cifar10 --data_dir"):
        _first_batch(DataSource("tfds", "cifar10", data_dir=str(tmp_path), image_size=32, channels=3))
    with pytest.raises(DataError, match=r"'imagenet2012' .* manual download into .*downloads/manual"):
        _first_batch(DataSource("tfds", "imagenet2012", data_dir=str(tmp_path), image_size=32, channels=3))


def _write_png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_folder_source_recursive_nonsquare(tmp_path, rng):
    for i, (h, w) in enumerate([(40, 30), (20, 50), (33, 33)]):
        _write_png(tmp_path / f"sub{i % 2}" / f"im{i}.png", rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    source = parse_source(str(tmp_path), 16, 3)
    assert source.kind == "folder"
    _check(_first_batch(source, batch=3, training=False), 3, 16, 3)
    _check(_first_batch(DataSource("folder", str(tmp_path), image_size=8, channels=1), batch=3), 3, 8, 1)
    # A training batch is never filled with repeats of a smaller data set.
    with pytest.raises(DataError, match=r"holds 3 images; a batch needs 4"):
        _first_batch(DataSource("folder", str(tmp_path), image_size=8, channels=1), batch=4)


def test_folder_errors_are_named(tmp_path, rng):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"holds no \.png/\.jpg/\.jpeg files"):
        _first_batch(DataSource("folder", str(tmp_path / "empty")))
    bad = tmp_path / "bad"
    _write_png(bad / "a.png", rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    (bad / "b.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"unreadable image .*b\.png"):
        _first_batch(DataSource("folder", str(bad)))
    mixed = tmp_path / "mixed"
    _write_png(mixed / "rgb.png", rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    _write_png(mixed / "grey.png", rng.integers(0, 256, (8, 8), dtype=np.uint8))
    with pytest.raises(DataError, match=r"mixes channel counts \(1 channels: .*grey\.png.*3 channels: .*rgb\.png"):
        _first_batch(DataSource("folder", str(mixed)))


def test_center_crop_keeps_the_centre():
    image = np.zeros((10, 6, 1), np.uint8)
    image[2:8] = 255  # the centred 6×6 square
    np.testing.assert_array_equal(center_crop(tf.constant(image)).numpy(), np.full((6, 6, 1), 255, np.uint8))
    wide = np.zeros((4, 10, 1), np.uint8)
    wide[:, 3:7] = 200
    np.testing.assert_array_equal(center_crop(tf.constant(wide)).numpy(), np.full((4, 4, 1), 200, np.uint8))


def test_random_crop_and_flip_stay_in_range(tmp_path, rng):
    images = rng.integers(0, 256, (12, 20, 24, 3), dtype=np.uint8)
    np.save(tmp_path / "x.npy", images)
    source = parse_source(str(tmp_path / "x.npy"), 16, 3, random_crop=(0.5, 1.0, 0.75, 1.33), flip=True)
    a, b = _first_batch(source), _first_batch(source)
    _check(a, 4, 16, 3)
    np.testing.assert_array_equal(a, b)  # seeded
    with pytest.raises(DataError, match="random_crop"):
        DataSource("array", "x.npy", random_crop=(0.9, 0.5, 1.0, 1.0))


def test_array_sources(tmp_path, rng):
    images = rng.integers(0, 256, (5, 16, 16, 1), dtype=np.uint8)
    np.savez(tmp_path / "a.npz", images=images)
    batch = _first_batch(parse_source(str(tmp_path / "a.npz"), 16, 1), batch=5, training=False)
    np.testing.assert_allclose(batch, uint8_to_model_range(images), atol=1e-6)
    # Floats in [-1, 1] are taken as the same images; raw pixel values as floats are not floats in [-1, 1].
    np.save(tmp_path / "f.npy", uint8_to_model_range(images).numpy())
    batch = _first_batch(parse_source(str(tmp_path / "f.npy"), 16, 1), batch=5, training=False)
    np.testing.assert_allclose(batch, uint8_to_model_range(images), atol=1e-6)
    np.save(tmp_path / "f.npy", images.astype(np.float32))
    with pytest.raises(DataError, match=r"float images must be in \[-1, 1\], got values in \[\d+, 255\]"):
        _first_batch(parse_source(str(tmp_path / "f.npy"), 16, 1))
    with pytest.raises(DataError, match="does not exist"):
        _first_batch(DataSource("array", str(tmp_path / "none.npz")))
    with pytest.raises(DataError, match=r"not 'digits', 'glyphs' or 'photo-patches'"):
        parse_source(str(tmp_path / "none"), 16, 1)


def test_per_replica_pipeline_splits_the_global_batch_evenly():
    strategy = mirrored_strategy(["/cpu:0", "/cpu:1"])
    dist = distributed_dataset(strategy, DataSource("digits", image_size=16), global_batch_size=8)
    per_replica = strategy.experimental_local_results(next(iter(dist)))
    assert [r.shape for r in per_replica] == [(4, 16, 16, 1), (4, 16, 16, 1)]
    assert not np.array_equal(per_replica[0].numpy(), per_replica[1].numpy())
    with pytest.raises(DataError, match="not divisible by 2 replicas"):
        distributed_dataset(strategy, DataSource("digits"), global_batch_size=7)


def test_uint8_conversions_roundtrip():
    pixels = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1)
    floats = uint8_to_model_range(pixels).numpy()
    assert floats.min() == -1.0 and floats.max() == 1.0
    np.testing.assert_array_equal(model_range_to_uint8(floats), pixels)


def test_uint8_conversion_clips_out_of_range_values_and_refuses_nan():
    values = np.array([-np.inf, -1.5, -1.0, 0.0, 1.0, 1.5, np.inf], np.float32).reshape(1, 7, 1, 1)
    assert model_range_to_uint8(values).ravel().tolist() == [0, 0, 0, 128, 255, 255, 255]
    values[0, 3] = np.nan
    with pytest.raises(ValueError, match="1 of 7 image values are NaN"):
        model_range_to_uint8(values)


def test_array_dataset_repeats_and_drops_remainder():
    images = np.zeros((10, 4, 4, 1), "float32")
    assert all(b.shape == (4, 4, 4, 1) for b in array_dataset(images, 4, training=True).take(5))
    assert [len(b) for b in array_dataset(images, 4, training=False)] == [4, 4, 2]
    with pytest.raises(ValueError, match="3 images cannot fill one batch of 4"):
        array_dataset(np.zeros((3, 4, 4, 1)), 4)


def test_start_step_resumes_the_same_stream(tmp_path, rng):
    np.save(tmp_path / "x.npy", rng.integers(0, 256, (10, 12, 12, 3), dtype=np.uint8))
    source = parse_source(str(tmp_path / "x.npy"), 8, 3, random_crop=(0.5, 1.0, 0.8, 1.25), flip=True)
    full = [b.numpy() for b in image_dataset(source, 4, seed=5).take(7)]
    resumed = [b.numpy() for b in image_dataset(source, 4, seed=5, start_step=4).take(3)]
    for a, b in zip(full[4:], resumed, strict=True):
        np.testing.assert_array_equal(a, b)


def test_array_files_that_cannot_feed_training_are_named(tmp_path):
    np.savez(tmp_path / "empty.npz", images=np.zeros((0, 16, 16, 1), np.uint8))
    # Not an endless search for a batch: the file is refused as it is read.
    with pytest.raises(DataError, match=r"empty\.npz': expected uint8 images .* N > 0, got uint8 \[0, 16, 16, 1\]"):
        _first_batch(DataSource("array", str(tmp_path / "empty.npz")))
    np.savez(tmp_path / "one.npz", images=np.zeros((1, 16, 16, 1), np.uint8))
    with pytest.raises(DataError, match="holds 1 images; a batch needs 8"):  # not a batch of 8 copies
        _first_batch(DataSource("array", str(tmp_path / "one.npz")), batch=8)
    np.savez(tmp_path / "other.npz", pixels=np.zeros((8, 16, 16, 1), np.uint8))
    with pytest.raises(DataError, match=r"has no array 'images' \(arrays: \['pixels'\]\)"):
        _first_batch(DataSource("array", str(tmp_path / "other.npz")))
    (tmp_path / "text.npz").write_text("not a zip file")
    with pytest.raises(DataError, match=r"is neither a \.npy nor a \.npz file"):
        _first_batch(DataSource("array", str(tmp_path / "text.npz")))
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04 a truncated zip")
    with pytest.raises(DataError, match=r"cannot read array file .* File is not a zip file"):
        _first_batch(DataSource("array", str(tmp_path / "broken.npz")))


def test_a_digits_split_may_be_sliced():
    first, labels = load_digits(8, return_labels=True, split="train[:200]")
    train, train_labels = load_digits(8, return_labels=True, split="train")
    assert first.shape == (200, 8, 8, 1) and np.array_equal(first, train[:200])
    assert np.array_equal(labels, train_labels[:200])
    assert len(read_source(parse_source("digits:held_out[10:20]", 8, 1))) == 10


@pytest.mark.parametrize(("spec", "channels"), [("glyphs:train[:7]", 1), ("photo-patches:held_out[:7]", 3)])
def test_offline_sets_read_at_the_model_size(spec, channels):
    images = read_source(parse_source(spec, 16, channels))
    _check(images, 7, 16, channels)
    native = offline_sets.glyphs if spec.startswith("glyphs") else offline_sets.photo_patches
    full = read_source(parse_source(spec, 32, channels))  # their native size: the pixels themselves
    np.testing.assert_allclose(
        full, uint8_to_model_range(native(spec.partition(":")[2].partition("[")[0])[:7]), atol=1e-6
    )


def test_a_source_without_a_held_out_split_gives_every_tenth_image_to_the_report(tmp_path):
    images = np.arange(25, dtype=np.uint8).reshape(25, 1, 1, 1) * np.ones((1, 8, 8, 1), np.uint8)
    np.savez(tmp_path / "a.npz", images=images)
    train, held_out = parse_source(str(tmp_path / "a.npz"), 8, 1).train_and_held_out()
    kept = model_range_to_uint8(read_source(train))[:, 0, 0, 0]
    assert kept.tolist() == [i for i in range(25) if i % 10 != 9]
    assert model_range_to_uint8(read_source(held_out))[:, 0, 0, 0].tolist() == [9, 19]
    # The training stream reads the same rows.
    seen = np.concatenate([b.numpy() for b in image_dataset(train, 23, training=True).take(2)])
    assert set(model_range_to_uint8(seen)[:, 0, 0, 0]) == set(kept.tolist())
