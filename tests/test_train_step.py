"""``TrainStepModel`` (hat_ebm_tf.train_step): one update rule for HatEBM and Autoencoder, in every dtype policy."""

import keras
import numpy as np
import pytest

from hat_ebm_tf.autoencoder import Autoencoder
from hat_ebm_tf.data import array_dataset
from hat_ebm_tf.model import HatEBM
from hat_ebm_tf.networks import Generator, HatNetwork, RetrofitDecoder, RetrofitEncoder
from hat_ebm_tf.precision import global_policy
from hat_ebm_tf.sampler_config import LangevinConfig
from hat_ebm_tf.train_step import Tracker, TrainStepModel
from tests.helpers import tiny_autoencoder, tiny_model

# Temperature 1 and loss factor 1: losses of order 1, whose scaled gradients stay within float16's range.
SAMPLER = LangevinConfig(num_steps=2, step_size=0.05, temperature=1.0, max_residual_norm=1.0)
STEPS = 3


def _hat_ebm():
    # A bound on the hat's gradient that binds: the clip must be in the units of the unscaled loss.
    model = HatEBM(
        HatNetwork(16, 8, 1),
        Generator(16, 8, 1, latent_dim=4),
        sampler=SAMPLER,
        bank_size=32,
        max_grad_norm=1e-2,
        gen_loss_factor=1.0,
    )
    # SGD is linear in the gradient: a gradient unscaled once too often moves the weights 1/32768 as far.
    model.compile(hat_optimizer=keras.optimizers.SGD(0.1), generator_optimizer=keras.optimizers.SGD(0.1))
    return model, {"hat": model.hat, "generator": model.generator}


def _autoencoder():
    model = Autoencoder(
        RetrofitEncoder(width=8, channels=1, image_size=16),
        RetrofitDecoder(width=8, channels=1, latent_shape=(8, 8, 1)),
        loss_factor=1.0,
    )
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    return model, {"encoder": model.encoder, "decoder": model.decoder}


def _moves(build, policy, weights, digits):
    """``{network: norm of its weights' change}`` over ``STEPS`` steps of ``fit`` under ``policy``."""
    with global_policy(policy):
        model, networks = build()
        model.set_weights(weights)
        before = {name: [w.numpy() for w in net.trainable_weights] for name, net in networks.items()}
        model.fit(array_dataset(digits, 8, seed=1), steps_per_epoch=STEPS, epochs=1, verbose=0)
    after = {name: [w.numpy() for w in net.trainable_weights] for name, net in networks.items()}
    return {
        name: np.sqrt(sum(np.sum(np.square(a - b)) for a, b in zip(after[name], before[name], strict=True)))
        for name in networks
    }


@pytest.mark.parametrize("build", [_hat_ebm, _autoencoder], ids=["hat_ebm", "autoencoder"])
def test_weights_move_as_far_under_mixed_precision_as_under_float32(build, digits16):
    keras.utils.set_random_seed(0)
    weights = build()[0].get_weights()
    reference = _moves(build, "float32", weights, digits16)
    assert min(reference.values()) > 0
    for policy in ("mixed_float16", "mixed_bfloat16"):
        moved = _moves(build, policy, weights, digits16)
        for name, distance in moved.items():
            ratio = distance / reference[name]
            assert 1 / 3 < ratio < 3, f"{policy}: the {name} moved {ratio:.3g}× as far as under float32"


def test_the_base_and_its_tracker_serialise_and_load_back():
    base = TrainStepModel(seed=7, name="base")
    config = keras.saving.serialize_keras_object(base)
    assert config["registered_name"] == "hat_ebm_tf>TrainStepModel"
    again = keras.saving.deserialize_keras_object(config)
    assert type(again) is TrainStepModel and again.seed == 7 and again.get_config() == base.get_config()
    tracker = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(Tracker(name="loss")))
    assert type(tracker) is Tracker and tracker.name == "loss"


def test_both_models_check_the_batch_and_seed_the_rows_alike(digits16):
    hat_ebm, autoencoder = tiny_model(), tiny_autoencoder()
    for model in (hat_ebm, autoencoder):
        with pytest.raises(ValueError, match=rf"{type(model).__name__}.train_step: .* image tensors only, not tuple"):
            model.checked_batch((digits16, digits16))
        step, seeds = model.step_seeds(3)
        assert int(step) == 0 and seeds.numpy().tolist() == [[0, 0], [0, 1], [0, 2]]  # step_seed(0, 0) = 0
