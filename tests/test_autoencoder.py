import keras
import numpy as np

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
