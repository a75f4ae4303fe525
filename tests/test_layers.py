import keras
import numpy as np
import pytest
import tensorflow as tf

from hat_ebm_tf.layers import DownBlock, SphereProjection, UpBlock, _image_conv, _residual_conv


def _roundtrip(layer, x):
    clone = layer.__class__.from_config(layer.get_config())
    clone.build(x.shape)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(clone(x), layer(x), rtol=1e-6, atol=1e-6)
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(revived) is type(layer) and revived.get_config() == layer.get_config()


@pytest.mark.parametrize(
    ("filters", "down", "stem", "out_hw", "has_sc"),
    [(8, True, True, 4, True), (3, False, False, 8, False), (8, True, False, 4, True), (5, False, False, 8, True)],
)
def test_down_block_shapes_shortcut_and_roundtrip(rng, filters, down, stem, out_hw, has_sc):
    x = rng.standard_normal((2, 8, 8, 3)).astype("float32")
    block = DownBlock(filters, downsample=down, stem=stem)
    y = block(x)
    assert y.shape == (2, out_hw, out_hw, filters)
    assert (block.sc is not None) == has_sc
    _roundtrip(block, x)


def test_stem_block_pools_before_its_shortcut_conv(rng):
    x = rng.standard_normal((1, 4, 4, 2)).astype("float32")
    block = DownBlock(3, downsample=True, stem=True)
    block(x)
    # Zero the residual path: the output is then the shortcut alone.
    for conv in (block.conv_1, block.conv_2):
        conv.kernel.assign(np.zeros(conv.kernel.shape, "float32"))
        conv.bias.assign(np.zeros(conv.bias.shape, "float32"))
    pooled = x.reshape(1, 2, 2, 2, 2, 2).mean(axis=(2, 4))
    expected = pooled @ block.sc.kernel.numpy()[0, 0] + block.sc.bias.numpy()
    np.testing.assert_allclose(block(x), expected, rtol=1e-5, atol=1e-6)


def test_plain_block_has_relu_before_first_conv_stem_does_not(rng):
    x = -np.abs(rng.standard_normal((1, 4, 4, 3))).astype("float32")  # all negative
    plain, stem = DownBlock(3), DownBlock(3, stem=True)
    plain(x), stem(x)
    stem.set_weights(plain.get_weights())
    # relu(x) = 0, so the plain block's residual path sees only the biases.
    assert not np.allclose(plain(x), stem(x))


@pytest.mark.parametrize(
    ("filters", "up", "stem", "out_hw"), [(6, True, False, 8), (4, False, False, 4), (6, False, True, 4)]
)
def test_up_block_shapes_and_roundtrip(rng, filters, up, stem, out_hw):
    x = rng.standard_normal((2, 4, 4, 4)).astype("float32")
    block = UpBlock(filters, upsample=up, stem=stem)
    assert block(x).shape == (2, out_hw, out_hw, filters)
    assert (block.bn_1 is None) == stem
    assert block.bn_2.synchronized
    _roundtrip(block, x)


def test_up_block_stem_cannot_upsample():
    with pytest.raises(ValueError, match="stem=True, upsample=True"):
        UpBlock(4, upsample=True, stem=True)


def test_sphere_projection_norm_and_roundtrip(rng):
    z = rng.standard_normal((3, 4, 4, 1)).astype("float32") * 5
    out = SphereProjection()(z).numpy()
    np.testing.assert_allclose(np.linalg.norm(out.reshape(3, -1), axis=1), 4.0, rtol=1e-5)
    _roundtrip(SphereProjection(), z)


@pytest.mark.parametrize("dtype", ["float32", "mixed_bfloat16"])
def test_pooled_conv_equals_pooling_the_conv(rng, dtype):
    x = rng.standard_normal((2, 6, 8, 3)).astype("float32")
    conv = keras.layers.Conv2D(5, 3, padding="same", bias_initializer="random_normal", dtype=dtype)
    conv.build(x.shape)
    pooled = keras.layers.AveragePooling2D(2)(conv(x))
    folded = _residual_conv(conv, keras.ops.cast(x, conv.compute_dtype), pooled=True)
    folded += keras.ops.cast(conv.bias, folded.dtype)
    assert folded.shape == (2, 3, 4, 5) and folded.dtype == conv.compute_dtype
    tol = 1e-5 if dtype == "float32" else 5e-2
    np.testing.assert_allclose(np.float32(folded), np.float32(pooled), rtol=tol, atol=tol)


@pytest.mark.parametrize("channels", [1, 3])
def test_image_conv_matches_conv_and_its_gradients(rng, channels):
    x = tf.constant(rng.standard_normal((2, 6, 8, channels)), tf.float32)
    kernel = tf.constant(rng.standard_normal((3, 3, channels, 5)), tf.float32)
    weights = tf.constant(rng.standard_normal((2, 6, 8, 5)), tf.float32)

    def grads(conv):
        with tf.GradientTape() as tape:
            tape.watch([x, kernel])
            loss = tf.reduce_sum(conv(x, kernel) * weights)
        return [loss, *tape.gradient(loss, [x, kernel])]

    expected = grads(lambda v, k: tf.nn.conv2d(v, k, 1, "SAME"))
    for got, want in zip(grads(_image_conv), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
