"""``MovingAverages`` (training.moving_averages): trained weights and their averages, swapped in one place."""

import keras
import numpy as np

from hat_ebm_tf.data import array_dataset
from hat_ebm_tf.training.moving_averages import MovingAverages
from tests.helpers import tiny_autoencoder, tiny_model


def _values(model):
    return [v.numpy() for v in model.trainable_weights]


def _equal(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_the_trained_weights_come_back_after_fit_and_after_the_averages_are_applied(digits16):
    model = tiny_model()  # EMA momentum 0.9 over both networks
    weights = MovingAverages(model)
    assert weights.kept
    keep = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: weights.keep_trained())
    model.fit(array_dataset(digits16, 16), steps_per_epoch=2, epochs=1, verbose=0, callbacks=[keep])
    averages = _values(model)  # fit ended by swapping the averages in
    weights.restore_trained()
    trained = _values(model)
    assert not _equal(averages, trained)
    with weights.applied():
        assert _equal(_values(model), averages)
    assert _equal(_values(model), trained)
    weights.swap_in()
    assert _equal(_values(model), averages)


def test_without_averages_nothing_is_swapped():
    model = tiny_autoencoder()  # FusedAdam without use_ema
    weights = MovingAverages(model)
    before = _values(model)
    assert not weights.kept
    with weights.applied():
        assert _equal(_values(model), before)
    weights.swap_in()
    assert _equal(_values(model), before)
