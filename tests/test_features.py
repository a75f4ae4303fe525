"""Feature extractors: the Inception GraphDef loader (on a tiny stand-in graph), Keras models and SavedModels."""

import tarfile

import keras
import numpy as np
import pytest
import tensorflow as tf

from hat_ebm_tf.errors import ModelFileError
from hat_ebm_tf.features import (
    INCEPTION_ENV,
    INCEPTION_FILE,
    INCEPTION_URL,
    InceptionNotFoundError,
    features_from_keras,
    inception_cache_path,
    inception_features,
    load_feature_extractor,
)

SIZE, DIM = 8, 16  # the stand-in graph resizes to 8×8 (Inception: 299×299) and has 16 features (2048)


def conv_weights():
    return np.random.default_rng(0).normal(size=(3, 3, 3, DIM)).astype(np.float32)


def expected_features(pixels):
    """What the stand-in graph computes, from float pixels ``[B, H, W, 3]`` in [0, 255]."""
    resized = tf.raw_ops.ResizeBilinear(images=pixels, size=[SIZE, SIZE])
    hidden = tf.nn.relu(tf.nn.conv2d((resized - 128.0) / 128.0, conv_weights(), 1, "SAME"))
    return tf.reduce_mean(hidden, axis=[1, 2]).numpy()


def write_standin_graph(path):
    """A GraphDef laid out like TTUR's Inception graph, with its tensor names.

    JPEG bytes → DecodeJpeg (uint8) → Cast → ExpandDims (the batch of one that
    TTUR feeds) → ResizeBilinear → scaling → conv → pool_3 [1, 1, 1, D] →
    pool_3/_reshape fixed to batch 1. Written with ``_output_shapes`` (batch 1),
    as a graph built for one image at a time carries them.
    """
    graph = tf.Graph()
    with graph.as_default():
        contents = tf.compat.v1.placeholder(tf.string, [], name="DecodeJpeg/contents")
        decoded = tf.io.decode_jpeg(contents, channels=3, name="DecodeJpeg")
        batch = tf.expand_dims(tf.cast(decoded, tf.float32, name="Cast"), 0, name="ExpandDims")
        resized = tf.raw_ops.ResizeBilinear(images=batch, size=[SIZE, SIZE], name="ResizeBilinear")
        scaled = tf.multiply(tf.subtract(resized, 128.0, name="Sub"), 1 / 128.0, name="Mul")
        hidden = tf.nn.relu(tf.nn.conv2d(scaled, tf.constant(conv_weights()), 1, "SAME"), name="conv")
        pool = tf.nn.avg_pool2d(hidden, SIZE, 1, "VALID", name="pool_3")
        tf.reshape(pool, [1, DIM], name="pool_3/_reshape")
    path.write_bytes(graph.as_graph_def(add_shapes=True).SerializeToString())
    return path


@pytest.fixture
def no_inception(tmp_path, monkeypatch):
    """No $HAT_EBM_INCEPTION, and an empty cache directory."""
    monkeypatch.delenv(INCEPTION_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


def test_the_graph_loader_runs_batches_of_any_size_from_every_place(no_inception, monkeypatch, rng):
    graph = write_standin_graph(no_inception / INCEPTION_FILE)
    grey = rng.integers(0, 256, size=(5, 11, 9, 1), dtype=np.uint8)
    expected = expected_features(np.repeat(grey, 3, axis=-1).astype(np.float32))

    extractor = inception_features(graph, batch_size=2)  # batches of 2, 2 and 1: the batch dimension is free
    np.testing.assert_allclose(extractor(grey), expected, rtol=1e-5, atol=1e-6)
    assert extractor.info["path"] == str(graph) and len(extractor.info["sha256"]) == 64

    with tarfile.open(no_inception / "inception-2015-12-05.tgz", "w:gz") as archive:
        archive.add(graph, arcname=INCEPTION_FILE)
    colour = rng.integers(0, 256, size=(3, 20, 20, 3), dtype=np.uint8)
    from_tgz = load_feature_extractor(f"inception:{no_inception / 'inception-2015-12-05.tgz'}")
    np.testing.assert_allclose(from_tgz(colour), expected_features(colour.astype(np.float32)), rtol=1e-5, atol=1e-6)

    monkeypatch.setenv(INCEPTION_ENV, str(no_inception))  # a directory holding the file
    assert inception_features().info["path"] == str(graph)
    monkeypatch.delenv(INCEPTION_ENV)
    cache = inception_cache_path()
    cache.parent.mkdir(parents=True)
    graph.rename(cache)
    assert load_feature_extractor("inception").info["path"] == str(cache)


def test_a_missing_inception_file_says_where_to_get_it_and_put_it(no_inception):
    with pytest.raises(InceptionNotFoundError) as caught:
        inception_features()
    message = str(caught.value)
    for text in (str(inception_cache_path()), f"${INCEPTION_ENV} is not set", INCEPTION_URL, "inception:PATH"):
        assert text in message
    with pytest.raises(InceptionNotFoundError, match=r"searched: /nowhere/graph\.pb\)"):
        load_feature_extractor("inception:/nowhere/graph.pb")


def test_wrong_graph_files_are_named(no_inception):
    (no_inception / "junk.pb").write_bytes(b"\xff not a protobuf")
    with pytest.raises(ValueError, match="is not a TensorFlow GraphDef"):
        inception_features(no_inception / "junk.pb")
    graph = tf.Graph()
    with graph.as_default():
        tf.constant(1.0, name="ExpandDims")
    (no_inception / "other.pb").write_bytes(graph.as_graph_def().SerializeToString())
    with pytest.raises(ValueError, match=r"has no tensors \['pool_3:0'\]"):
        inception_features(no_inception / "other.pb")


def standin_keras_model():
    return keras.Sequential(
        [
            keras.Input((None, None, 3)),
            keras.layers.Rescaling(1 / 127.5, offset=-1.0),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
        ],
        name="standin",
    )


def test_keras_models_and_saved_models_plug_in(tmp_path, rng):
    model = standin_keras_model()
    images = rng.integers(0, 256, size=(7, 12, 12, 1), dtype=np.uint8)
    expected = model(np.repeat(images, 3, axis=-1).astype(np.float32)).numpy()
    in_memory = features_from_keras(model, batch_size=3)
    np.testing.assert_allclose(in_memory(images), expected, rtol=1e-5, atol=1e-6)

    model.save(tmp_path / "standin.keras")
    from_file = load_feature_extractor(str(tmp_path / "standin.keras"))
    np.testing.assert_allclose(from_file(images), expected, rtol=1e-5, atol=1e-6)
    assert from_file.info["kind"] == "keras model standin" and len(from_file.info["sha256"]) == 64

    model.export(tmp_path / "standin_savedmodel", verbose=False)
    saved = load_feature_extractor(str(tmp_path / "standin_savedmodel"))
    np.testing.assert_allclose(saved(images), expected, rtol=1e-5, atol=1e-6)
    assert saved.info["kind"] == "savedmodel" and saved.channels == 3


def test_bad_images_features_and_specs_are_named(tmp_path, rng):
    extractor = features_from_keras(standin_keras_model())
    with pytest.raises(ValueError, match=r"expected uint8 images \[N, H, W, 1 or 3\].*got float32"):
        extractor(np.zeros((2, 8, 8, 3), np.float32))
    flat = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 1)], name="maps")
    maps = features_from_keras(flat)
    with pytest.raises(ValueError, match="takes 1-channel images, got 3 channels"):
        maps(np.zeros((2, 8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match=r"expected features \[2, D\].*got \[2, 8, 8, 2\]"):
        maps(np.zeros((2, 8, 8, 1), np.uint8))
    # Model files: a missing one, one of another kind, and one Keras cannot read (exit code 3 in `hat-ebm fid`).
    with pytest.raises(ModelFileError, match=r"nothing.keras': no such file or directory"):
        load_feature_extractor(str(tmp_path / "nothing.keras"))
    (tmp_path / "weights.h5").write_bytes(b"")
    with pytest.raises(ModelFileError, match=r"not 'inception', 'inception:PATH', a \.keras file or a SavedModel"):
        load_feature_extractor(str(tmp_path / "weights.h5"))
    (tmp_path / "broken.keras").write_bytes(b"not a zip")
    with pytest.raises(ModelFileError, match=r"broken.keras': cannot load it"):
        load_feature_extractor(str(tmp_path / "broken.keras"))
