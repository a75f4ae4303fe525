import keras
import numpy as np
import pytest
import scipy.special
import tensorflow as tf

from hat_ebm_tf.choices import GENERATOR_TABLE, HAT_TABLE
from hat_ebm_tf.networks import Generator, HatNetwork, PriorDecoder, RetrofitDecoder, RetrofitEncoder


def _keras_roundtrip(net, x, tmp_path):
    path = tmp_path / f"{net.name}.keras"
    net.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(net) and loaded.get_config() == net.get_config()
    np.testing.assert_allclose(loaded(x), net(x), rtol=1e-5, atol=1e-6)
    clone = type(net).from_config(net.get_config())
    assert [w.shape for w in clone.weights] == [w.shape for w in net.weights]


@pytest.mark.parametrize("size", sorted(HAT_TABLE))
def test_hat_network_every_size(size, rng, tmp_path):
    net = HatNetwork(image_size=size, width=16, channels=3)
    x = rng.uniform(-1, 1, (2, size, size, 3)).astype("float32")
    assert net(x).shape == (2, 1)
    _keras_roundtrip(net, x, tmp_path)


@pytest.mark.parametrize("size", sorted(GENERATOR_TABLE))
def test_generator_every_size(size, rng, tmp_path):
    net = Generator(image_size=size, width=16, channels=3, latent_dim=8, out_factor=2.0)
    z = rng.standard_normal((2, 8)).astype("float32")
    out = net(z).numpy()
    assert out.shape == (2, size, size, 3)
    assert np.abs(out).max() <= 2.0
    assert all(layer.synchronized for block in net.blocks for layer in (block.bn_1, block.bn_2))
    _keras_roundtrip(net, z, tmp_path)


def test_retrofit_decoder_and_encoder(rng, tmp_path):
    dec = RetrofitDecoder(width=8, channels=3, latent_shape=(16, 16, 1))
    enc = RetrofitEncoder(width=8, channels=3, latent_channels=1, normalize=True)
    x = rng.uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    z = enc(x).numpy()
    assert z.shape == (2, 16, 16, 1)
    np.testing.assert_allclose(np.linalg.norm(z.reshape(2, -1), axis=1), 16.0, rtol=1e-4)
    assert dec(z).shape == (2, 32, 32, 3)
    _keras_roundtrip(dec, z, tmp_path)
    _keras_roundtrip(enc, x, tmp_path)


def test_reference_layer_names():
    hat = HatNetwork(32, 16, 3)
    assert [b.name for b in hat.blocks] == ["conv_1", "block2", "block3", "block4"] and hat.head.name == "lin_5"
    gen = Generator(64, 16, 3)
    assert [b.name for b in gen.blocks] == ["block2", "block3", "block4", "block5"]
    assert (gen.bn.name, gen.conv.name) == ("bn_6", "conv_6")


@pytest.mark.parametrize("cls", [HatNetwork, Generator])
def test_unsupported_size_is_named(cls):
    with pytest.raises(ValueError, match="image_size=48"):
        cls(image_size=48, width=16)


def test_bad_width_and_channels_are_named():
    with pytest.raises(ValueError, match="width=24"):
        HatNetwork(image_size=64, width=24)
    with pytest.raises(ValueError, match="channels=0"):
        Generator(image_size=32, width=16, channels=0)
    with pytest.raises(ValueError, match="latent_shape"):
        RetrofitDecoder(width=8, latent_shape=(16, 16))


@pytest.mark.parametrize("components", [1, 3])
def test_prior_decoder_roundtrip(rng, tmp_path, components):
    prior = PriorDecoder(RetrofitDecoder(8, 1, (8, 8, 1)), components)
    prior.prior_weights.assign(rng.dirichlet(np.ones(components)).astype(np.float32))
    prior.prior_mean.assign(rng.normal(size=(components, 64)).astype(np.float32))
    prior.prior_scale.assign(
        np.stack([np.diag(rng.uniform(0.5, 1.5, 64)) for _ in range(components)]).astype(np.float32)
    )
    assert prior.latent_shape == (8, 8, 1) and (prior.image_size, prior.channels) == (16, 1)
    _keras_roundtrip(prior, rng.normal(size=(2, 8, 8, 1)).astype(np.float32), tmp_path)


def _mixture_decoder(rng, weights):
    """A ``PriorDecoder`` of random means and scales over a tiny decoder, and its decoder."""
    decoder = RetrofitDecoder(8, 1, (8, 8, 1))
    prior = PriorDecoder(decoder, len(weights))
    prior.prior_weights.assign(np.asarray(weights, np.float32))
    prior.prior_mean.assign(rng.normal(size=(len(weights), 64)).astype(np.float32))
    prior.prior_scale.assign(rng.normal(scale=0.3, size=(len(weights), 64, 64)).astype(np.float32))
    return prior, decoder


def test_a_mixture_prior_decodes_the_component_and_the_renormalised_normal_of_the_first_coordinate(rng):
    """ε_0 = Φ⁻¹(c_{k−1} + w_k·v) decodes μ_k + S_k·ε' with ε'_0 = Φ⁻¹(v): the inverse-CDF split, by hand."""
    weights = [0.2, 0.5, 0.3]
    prior, decoder = _mixture_decoder(rng, weights)
    lower = np.cumsum([0.0, *weights[:-1]])
    components, fractions = np.array([0, 1, 2, 1, 2]), np.array([0.5, 0.1, 0.9, 0.75, 0.3])
    eps = rng.normal(size=(5, 64))
    eps[:, 0] = scipy.special.ndtri(lower[components] + np.take(weights, components) * fractions)
    whitened = eps.copy()
    whitened[:, 0] = scipy.special.ndtri(fractions)
    means, scales = prior.prior_mean.numpy()[components], prior.prior_scale.numpy()[components]
    codes = means + np.einsum("bij,bj->bi", scales, whitened)
    expected = decoder(codes.reshape(5, 8, 8, 1).astype(np.float32))
    np.testing.assert_allclose(prior(eps.reshape(5, 8, 8, 1).astype(np.float32)), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("weights", [[0.1, 0.6, 0.3], [0.4, 0.0, 0.6]])
def test_a_mixture_prior_draws_each_component_with_its_weight(rng, weights):
    """With zero scales every code is a component's mean: the shares of 6000 draws of ε ~ N(0, I) match the weights.

    A component of weight 0 is never drawn, and the images and their gradients (the joint chain's) stay finite.
    """
    weights = np.array(weights)
    prior, decoder = _mixture_decoder(rng, weights)
    eps = tf.constant(rng.normal(size=(6000, 8, 8, 1)).astype(np.float32))
    head = eps[:500]
    with tf.GradientTape() as tape:
        tape.watch(head)
        decoded = prior(head)
        total = tf.reduce_sum(decoded)
    gradient = tape.gradient(total, head)
    assert np.isfinite(decoded).all() and np.isfinite(gradient).all()
    prior.prior_scale.assign(np.zeros((3, 64, 64), np.float32))
    images = np.asarray(prior(eps)).reshape(6000, -1)
    centres = np.asarray(decoder(prior.prior_mean.numpy().reshape(3, 8, 8, 1))).reshape(3, -1)
    nearest = np.argmin(((images[:, None] - centres[None]) ** 2).sum(axis=2), axis=1)
    # Binomial standard error of a share at n = 6000 is at most 0.0065: 0.025 is about 4 of them.
    np.testing.assert_allclose(np.bincount(nearest, minlength=3) / 6000, weights, atol=0.025)
