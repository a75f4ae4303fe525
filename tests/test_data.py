import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

from hat_ebm_tf.data import (
    TFDS_BUILDERS,
    DataError,
    DataSource,
    array_dataset,
    center_crop,
    distributed_dataset,
    image_dataset,
    load_digits,
    model_range_to_uint8,
    parse_source,
    uint8_to_model_range,
)


def _first_batch(source, batch=4, training=True):
    return next(iter(image_dataset(source, batch, training=training))).numpy()


def _check(images, batch, size, channels):
    assert images.shape == (batch, size, size, channels) and images.dtype == np.float32
    assert images.min() >= -1.0 and images.max() <= 1.0


@pytest.mark.parametrize("size", [8, 16, 32])
def test_digits_shape_dtype_range(size):
    images, labels = load_digits(size, return_labels=True)
    assert images.shape == (1797, size, size, 1) and images.dtype == np.float32
    assert images.min() >= -1.0 and images.max() <= 1.0 and images.max() > 0.9
    assert sorted(set(labels.tolist())) == list(range(10))
    _check(_first_batch(DataSource("digits", image_size=size)), 4, size, 1)


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
    _check(_first_batch(DataSource("folder", str(tmp_path), image_size=8, channels=1)), 4, 8, 1)


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
    np.save(tmp_path / "f.npy", images.astype(np.float32))
    with pytest.raises(DataError, match=r"expected uint8 images .* got float32"):
        _first_batch(parse_source(str(tmp_path / "f.npy"), 16, 1))
    with pytest.raises(DataError, match="does not exist"):
        _first_batch(DataSource("array", str(tmp_path / "none.npz")))
    with pytest.raises(DataError, match="not 'digits', 'tfds:NAME"):
        parse_source(str(tmp_path / "none"), 16, 1)


def test_per_replica_pipeline_splits_the_global_batch_evenly():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
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
