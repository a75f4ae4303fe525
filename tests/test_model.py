import gc
import weakref

import keras
import numpy as np
import pytest
import tensorflow as tf

from hat_ebm_tf.data import array_dataset, load_digits
from hat_ebm_tf.langevin_steps import energy_and_gradient, mean_drift_step
from hat_ebm_tf.losses import drift_penalty
from hat_ebm_tf.metrics import frechet_distance_from_features
from hat_ebm_tf.model import HatEBM
from hat_ebm_tf.networks import Generator, HatNetwork
from hat_ebm_tf.optimizers import FusedAdam
from hat_ebm_tf.sampler_config import LangevinConfig
from tests.helpers import TINY_SAMPLER, tiny_autoencoder, tiny_model


def _energy_gap(model, data, samples):
    return float(tf.reduce_mean(model.energy(data)) - tf.reduce_mean(model.energy(samples)))


def test_one_fit_step_lowers_data_energy_relative_to_samples(digits16):
    model = tiny_model(data_epsilon=0.0)
    model.initialize_banks()
    samples = model.sample(64, seed=0)
    before = _energy_gap(model, digits16, samples)
    logs = model.fit(array_dataset(digits16, 32), steps_per_epoch=1, epochs=1, verbose=0).history
    assert set(logs) == {"loss", "energy_diff", "gen_loss", "grad_norm_latent", "grad_norm_res", "hat_grad_norm"}
    assert _energy_gap(model, digits16, samples) < before


def test_banks_change_at_the_drawn_indices_and_nowhere_else(digits16):
    model = tiny_model(bank_size=64)
    model.initialize_banks()
    latents, images = model.bank_latents.numpy().copy(), model.bank_images.numpy().copy()
    drawn = set(model.bank_indices(0, 16).numpy().tolist())
    model.fit(array_dataset(digits16, 16), steps_per_epoch=1, epochs=1, verbose=0)
    changed_z = set(np.flatnonzero(np.any(model.bank_latents.numpy() != latents, axis=1)).tolist())
    changed_x = set(np.flatnonzero(np.any(model.bank_images.numpy().reshape(64, -1) != images.reshape(64, -1), axis=1)))
    assert changed_z == drawn and changed_x == drawn


def test_banks_start_as_generator_outputs():
    model = tiny_model(bank_size=10)
    model.initialize_banks()
    np.testing.assert_allclose(model.bank_images, model.generate(model.bank_latents), rtol=1e-5, atol=1e-6)
    assert abs(float(np.std(model.bank_latents))) == pytest.approx(1.0, abs=0.3)


@pytest.mark.parametrize("mode", ["refine", "retrofit"])
def test_joint_modes_train_with_a_frozen_generator(mode, digits16):
    model = tiny_model(mode=mode)
    gen_before = [w.numpy().copy() for w in model.generator.weights]
    hat_before = [w.numpy().copy() for w in model.hat.weights]
    logs = model.fit(array_dataset(digits16, 16), steps_per_epoch=2, epochs=1, verbose=0).history
    assert logs["grad_norm_latent"][0] > 0 and logs["gen_loss"][0] == 0
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(gen_before, model.generator.weights, strict=True))
    assert any(not np.array_equal(a, w.numpy()) for a, w in zip(hat_before, model.hat.weights, strict=True))
    refined = model.refine(np.zeros((3, 4), "float32"), seed=1)
    assert refined.images.shape == (3, 16, 16, 1) and np.any(refined.latents.numpy() != 0)


def test_sample_is_seeded_and_independent_of_batch_size():
    model = tiny_model()
    a = model.sample(5, seed=3)
    # Rows keep their seeds in any batch split; only conv round-off may differ.
    np.testing.assert_allclose(a, model.sample(5, seed=3, batch_size=2), rtol=0, atol=1e-5)
    assert not np.allclose(a, model.sample(5, seed=4))
    assert a.shape == (5, 16, 16, 1)
    # Batches of 5, 2 and 1 and int32 seeds all ran one traced sampler: no retracing per batch size.
    model.sample_with_seeds(np.array([[3, 0]], np.int32))
    assert model._sample_function(model.sampler_config).experimental_get_tracing_count() == 1


def test_a_model_and_its_traced_samplers_are_freed_once_unused():
    model = tiny_model("refine")
    model.sample(2, seed=0)
    model.refine(np.zeros((2, 4), "float32"), seed=0)
    freed = weakref.ref(model)
    del model
    gc.collect()
    assert freed() is None  # nothing global (a cache on a method) keeps it


def test_get_config_and_keras_file_roundtrip(tmp_path, digits16):
    model = tiny_model()
    model.fit(array_dataset(digits16, 16), steps_per_epoch=1, epochs=1, verbose=0)
    clone = HatEBM.from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert loaded.sampler_config == model.sampler_config and loaded.mode.name == "synthesis"
    np.testing.assert_allclose(loaded.energy(digits16[:4]), model.energy(digits16[:4]), rtol=1e-5)
    np.testing.assert_array_equal(loaded.bank_images, model.bank_images)
    np.testing.assert_allclose(loaded.sample(3, seed=1), model.sample(3, seed=1), rtol=1e-5, atol=1e-6)
    # The optimizers (and the hat optimizer's EMA slots) come back too.
    assert int(loaded.optimizer.iterations) == 1 and loaded.generator_optimizer is not None


def test_ema_weights_are_swapped_in_after_fit(digits16):
    model = tiny_model()  # hat optimizer: EMA momentum 0.9, kept over both networks' weights
    initial = [v.numpy() for v in model.trainable_weights]
    trained = []  # every weight after each step, before fit swaps the averages in
    record = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: trained.append([v.numpy() for v in model.trainable_weights])
    )
    model.fit(array_dataset(digits16, 16), steps_per_epoch=3, epochs=1, verbose=0, callbacks=[record])
    hat = {v.path for v in model.hat.trainable_weights}
    for j, variable in enumerate(model.trainable_weights):
        # The hat optimizer averages right after its own update: the hat's weights of steps 1..3, and the
        # generator's as they were then, before that step's generator update (initial, 1, 2).
        values = [step[j] for step in trained] if variable.path in hat else [initial[j], trained[0][j], trained[1][j]]
        average = values[0]  # Keras: the first update copies the weights
        for value in values[1:]:
            average = 0.9 * average + 0.1 * value
        np.testing.assert_allclose(variable.numpy(), average, rtol=1e-5, atol=1e-6, err_msg=variable.path)
    last = trained[-1]
    assert any(not np.array_equal(v.numpy(), last[j]) for j, v in enumerate(model.trainable_weights))  # swapped


@pytest.mark.parametrize(
    ("images", "match"),
    [
        (np.zeros((2, 16, 16), "float32"), "rank 3"),
        (np.zeros((2, 8, 8, 1), "float32"), r"shape \[2, 8, 8, 1\]"),
        (np.zeros((2, 16, 16, 3), "float32"), r"expected \[None, 16, 16, 1\]"),
        (np.zeros((2, 16, 16, 1), "uint8"), "dtype uint8"),
    ],
)
def test_bad_images_get_named_errors(images, match):
    with pytest.raises(ValueError, match=match):
        tiny_model().energy(images)


def _fit_fails(dataset, error, match):
    """A tiny model's one-step ``fit`` on ``dataset`` raises ``error``; its data iterator is freed on return.

    Keras leaves a failed fit's epoch iterator in a reference cycle that holds
    the tf.data iterator. Destroyed at a later automatic collection, inside
    another test, that iterator stalled its worker for 8 to 33 s in four of
    five suite runs: TF's CancellationManager runs its callbacks before it
    marks itself cancelled, so tf.data's autotuning thread can miss its wake-up
    and sleep out its optimisation period, which grows with the iterator's
    age. Collected here, while young, it is destroyed at once.
    """
    with pytest.raises(error, match=match):
        tiny_model().fit(dataset, steps_per_epoch=1, verbose=0)
    gc.collect()


def test_out_of_range_training_data_is_named():
    data = array_dataset(np.full((16, 16, 16, 1), 255.0, "float32"), 8)
    _fit_fails(data, tf.errors.InvalidArgumentError, "image values above 1")


def test_labelled_datasets_are_rejected(digits16):
    labelled = tf.data.Dataset.from_tensor_slices((digits16, np.zeros(64))).batch(8)
    _fit_fails(labelled, ValueError, "must yield image tensors only")


def test_bad_model_arguments_are_named():
    hat, gen = HatNetwork(16, 8, 1), Generator(16, 8, 1, latent_dim=4)
    with pytest.raises(ValueError, match="unknown mode='joint'"):
        HatEBM(hat, gen, mode="joint")
    with pytest.raises(ValueError, match="update_latents=False"):
        HatEBM(hat, gen, mode="synthesis", sampler=LangevinConfig(update_latents=True, latent_step_size=0.1))
    with pytest.raises(ValueError, match=r"generator images \[32, 32, 1\]"):
        HatEBM(hat, Generator(32, 8, 1, latent_dim=4), sampler=TINY_SAMPLER)
    with pytest.raises(ValueError, match="bank_size=0"):
        HatEBM(hat, gen, sampler=TINY_SAMPLER, bank_size=0)
    with pytest.raises(ValueError, match="generator_optimizer"):
        HatEBM(hat, gen, sampler=TINY_SAMPLER).compile(hat_optimizer="adam")


def test_drift_regularisation_adds_its_penalty_to_the_energy_loss(digits16):
    """One step of two models with the same weights and seeds: the losses differ by weight·(drift − target)²/T."""
    plain, regularised = tiny_model(), tiny_model(drift_weight=30.0, drift_target=0.05)
    for model in (plain, regularised):
        model.hat(digits16[:1]), model.generator(np.zeros((1, 4), "float32"))
    regularised.hat.set_weights(plain.hat.get_weights())
    regularised.generator.set_weights(plain.generator.get_weights())
    data = array_dataset(digits16, 8)
    base = plain.fit(data, steps_per_epoch=1, epochs=1, verbose=0).history
    history = regularised.fit(data, steps_per_epoch=1, epochs=1, verbose=0).history
    drift = history["sample_drift"][0]
    assert drift > 0
    penalty = 30.0 * (drift - 0.05) ** 2 / TINY_SAMPLER.temperature
    assert history["loss"][0] - base["loss"][0] == pytest.approx(penalty, rel=1e-3)
    assert history["energy_diff"][0] == pytest.approx(base["energy_diff"][0], rel=1e-4)
    # Without a weight, the reference's loss: no drift tracker.
    assert "sample_drift" not in {tracker.name for tracker in plain.metrics}


@pytest.mark.parametrize("direction", [0.5, 2.0])
def test_the_drift_penaltys_gradient_moves_the_drift_towards_its_target(direction):
    """A small gradient step on the penalty, taken through the energy's input gradient, brings the drift nearer."""
    hat = HatNetwork(16, 8, 1)
    images = tf.random.stateless_uniform((8, 16, 16, 1), seed=(0, 1), minval=-1.0, maxval=1.0)
    half_eps_sq = TINY_SAMPLER.step_size**2 / 2.0

    def drift():
        _, gradient = energy_and_gradient(hat, images)
        return mean_drift_step(half_eps_sq, gradient / TINY_SAMPLER.temperature)

    start = float(drift())
    target = direction * start
    with tf.GradientTape() as tape:
        penalty = drift_penalty(drift(), target, 1.0)
    gradients = tape.gradient(penalty, hat.trainable_weights)
    scale = 1e-3 / max(float(tf.linalg.global_norm(gradients)), 1e-12)
    for weight, gradient in zip(hat.trainable_weights, gradients, strict=True):
        weight.assign_sub(scale * gradient)
    assert abs(float(drift()) - target) < abs(start - target)


def test_a_tiny_retrofit_improves_on_its_decoder(quality_classifier):
    """Retrofit on a tiny autoencoder's decoder: its joint chains' samples are nearer the held-out digits than G(z)."""
    keras.utils.set_random_seed(0)  # the networks' initialisation
    train, held_out = load_digits(16), load_digits(16, split="held_out")
    # digits_retrofit's prior and sampler: a mixture over the codes, and a residual chain that contracts (ε²τ = 0.2).
    autoencoder = tiny_autoencoder(prior_components=10)
    autoencoder.fit(array_dataset(train, 32), steps_per_epoch=100, epochs=1, verbose=0)
    autoencoder.fit_latent_prior(train)
    decoder = autoencoder.prior_decoder()
    sampler = LangevinConfig(
        num_steps=10, step_size=0.01, latent_step_size=1e-3, temperature=1e-3, update_latents=True, tau=2000.0
    )
    model = HatEBM(HatNetwork(16, 16, 1), decoder, mode="retrofit", sampler=sampler, data_epsilon=0.03, seed=0)
    model.compile(hat_optimizer=FusedAdam(3e-4, use_ema=True, ema_momentum=0.9))
    model.fit(array_dataset(train, 32), steps_per_epoch=150, epochs=1, verbose=0)

    def distance(images):
        return frechet_distance_from_features(
            quality_classifier.classify(images)[1], quality_classifier.classify(held_out)[1]
        )

    latents = tf.random.stateless_normal((400, *decoder.latent_shape), seed=(0, 7))
    before = distance(np.asarray(decoder(latents)))
    after = distance(np.asarray(model.sample(400, seed=7)))
    assert after < 0.95 * before, (before, after)
