"""``hat_ebm_tf.optimizers.FusedAdam``: Keras's Adam, each update one fused kernel."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from hat_ebm_tf.distribute import mirrored_strategy
from hat_ebm_tf.optimizers import FusedAdam

SHAPES = [(3, 4), (5,), (2, 2, 3)]


def _steps(optimizer, sparse=False, steps=5):
    """``steps`` updates of seeded variables by seeded gradients, in a ``tf.function``; the final values."""
    rng = np.random.default_rng(0)
    variables = [keras.Variable(rng.standard_normal(shape).astype("float32")) for shape in SHAPES]
    optimizer.build(variables)
    gradients = [[rng.standard_normal(shape).astype("float32") for shape in SHAPES] for _ in range(steps)]

    @tf.function
    def apply(grads):
        if sparse:  # rows 0 and 2 of the first variable
            grads = [tf.IndexedSlices(tf.gather(grads[0], [0, 2]), tf.constant([0, 2]), grads[0].shape), *grads[1:]]
        optimizer.apply(grads, variables)

    for grads in gradients:
        apply(grads)
    if optimizer.use_ema:
        optimizer.finalize_variable_values(variables)
    return [v.numpy() for v in variables]


@pytest.mark.parametrize(
    "settings",
    [
        {"learning_rate": 1e-2},
        {"learning_rate": 3e-3, "beta_1": 0.5, "beta_2": 0.9, "epsilon": 1e-3, "use_ema": True, "ema_momentum": 0.8},
        {"learning_rate": keras.optimizers.schedules.PiecewiseConstantDecay([2], [1e-2, 1e-3]), "global_clipnorm": 1},
        {"learning_rate": 1e-2, "amsgrad": True},  # Keras's own update
    ],
    ids=["plain", "betas-ema", "schedule-clip", "amsgrad"],
)
def test_the_same_update_as_keras_adam(settings):
    fused = _steps(FusedAdam(**settings))
    plain = _steps(keras.optimizers.Adam(**settings))
    untouched = _steps(keras.optimizers.SGD(0.0))
    for a, b, start in zip(fused, plain, untouched, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        assert np.abs(a - start).max() > 1e-3  # the steps moved it: a no-op could not pass


def test_sparse_gradients_take_keras_update():
    fused, plain = _steps(FusedAdam(1e-2), sparse=True), _steps(keras.optimizers.Adam(1e-2), sparse=True)
    for a, b in zip(fused, plain, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_mirrored_replicas_update_their_own_copies():
    """Under two replicas, each component is updated by its replica's kernel: the same weights as one device."""
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((16, 3)).astype("float32"), rng.standard_normal((16, 2)).astype("float32")

    def fit(strategy):
        with strategy.scope():
            keras.utils.set_random_seed(0)
            model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, "tanh"), keras.layers.Dense(2)])
            model.compile(FusedAdam(1e-2, use_ema=True), loss="mse")
        model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
        return model

    single, mirrored = fit(tf.distribute.get_strategy()), fit(mirrored_strategy(["/cpu:0", "/cpu:1"]))
    for a, b in zip(single.get_weights(), mirrored.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for variable in mirrored.weights:  # each replica's copy holds the same value
        first, second = variable.value.values
        np.testing.assert_array_equal(first.numpy(), second.numpy())


def test_config_roundtrip():
    optimizer = FusedAdam(2e-3, beta_1=0.5, use_ema=True, ema_momentum=0.7)
    revived = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert type(revived) is FusedAdam and revived.get_config() == optimizer.get_config()
