import keras
import numpy as np
import pytest

from hat_ebm_tf.data import array_dataset
from tests.helpers import tiny_autoencoder


def test_fit_lowers_reconstruction_loss(digits16):
    model = tiny_autoencoder()
    # compile built the slots (not fit's first trace, which would trace the step twice).
    assert model.optimizer.built and len(model.optimizer.variables) > 2 * len(model.trainable_weights)
    history = model.fit(array_dataset(digits16, 32), steps_per_epoch=10, epochs=3, verbose=0).history["loss"]
    assert history[-1] < history[0]
    assert model(digits16[:2]).shape == (2, 16, 16, 1)


def test_keras_file_roundtrip(tmp_path, digits16):
    model = tiny_autoencoder()
    model.save(tmp_path / "ae.keras")
    loaded = keras.saving.load_model(tmp_path / "ae.keras")
    assert loaded.get_config() == model.get_config()
    np.testing.assert_allclose(loaded(digits16[:3]), model(digits16[:3]), rtol=1e-5, atol=1e-6)


def test_the_fitted_prior_has_the_codes_mean_and_covariance_and_decodes_through_it(tmp_path, digits16):
    model = tiny_autoencoder()
    model.fit_latent_prior(digits16)
    codes = np.asarray(model.encoder(digits16), np.float64).reshape(len(digits16), -1)
    np.testing.assert_array_equal(model.prior_weights.numpy(), [1.0])
    np.testing.assert_allclose(model.prior_mean.numpy()[0], codes.mean(axis=0), atol=1e-5)
    scale = model.prior_scale.numpy()[0].astype(np.float64)
    np.testing.assert_allclose(scale @ scale.T, np.cov(codes, rowvar=False), atol=1e-4)
    decoder = model.prior_decoder()
    eps = np.random.default_rng(0).normal(size=(3, *decoder.latent_shape)).astype(np.float32)
    codes_of_eps = model.prior_mean.numpy()[0] + eps.reshape(3, -1) @ scale.T
    expected = model.decoder(codes_of_eps.reshape(3, *decoder.latent_shape).astype(np.float32))
    np.testing.assert_allclose(decoder(eps), expected, rtol=1e-4, atol=1e-5)
    # The prior is saved with the autoencoder.
    model.save(tmp_path / "ae.keras")
    loaded = keras.saving.load_model(tmp_path / "ae.keras")
    np.testing.assert_array_equal(loaded.prior_scale.numpy(), model.prior_scale.numpy())


def test_a_mixture_prior_is_fitted_to_the_codes_and_saved(tmp_path, digits16):
    model = tiny_autoencoder(prior_components=3)
    model.fit_latent_prior(digits16)
    weights, means, scales = (model.prior_weights.numpy(), model.prior_mean.numpy(), model.prior_scale.numpy())
    assert weights.shape == (3,) and means.shape == (3, 64) and scales.shape == (3, 64, 64)
    np.testing.assert_allclose(weights.sum(), 1.0, rtol=1e-6)
    # The mixture's mean is the codes' mean (EM keeps it at its fixed point), and every scale is symmetric.
    codes = np.asarray(model.encoder(digits16), np.float64).reshape(len(digits16), -1)
    np.testing.assert_allclose(weights @ means, codes.mean(axis=0), atol=1e-3)
    np.testing.assert_allclose(scales, np.swapaxes(scales, 1, 2), atol=1e-5)
    decoder = model.prior_decoder()
    assert decoder.components == 3
    np.testing.assert_array_equal(decoder.prior_scale.numpy(), scales)
    model.save(tmp_path / "ae.keras")
    loaded = keras.saving.load_model(tmp_path / "ae.keras")
    np.testing.assert_array_equal(loaded.prior_weights.numpy(), weights)
    assert loaded.prior_decoder().components == 3


def test_a_prior_needs_as_many_codes_as_components(digits16):
    with pytest.raises(ValueError, match=r"a prior of 5 component\(s\) needs at least 5"):
        tiny_autoencoder(prior_components=5).fit_latent_prior(digits16[:4])
    with pytest.raises(ValueError, match="components=0 must be a positive integer"):
        tiny_autoencoder(prior_components=0)
