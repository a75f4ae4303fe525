"""Section 4: training steps/s of the shipped digits config and of CIFAR-10 synthesis at benchmark size."""

import dataclasses
import statistics
import time
import warnings

import keras
import numpy as np

from hat_ebm_tf.config import load_config
from hat_ebm_tf.data import array_dataset, image_dataset
from hat_ebm_tf.training.train import build_model

# Bank size does not change the cost of a step (a step gathers and scatters one
# batch of rows), only the memory and the one-off bank initialisation.
CIFAR_BANK_SIZE = 1000
TINY_BANK_SIZE = 64
# The digits config in --tiny runs: (width, latent_dim, batch).
TINY_DIGITS = (8, 8, 8)
RANDOM_IMAGES_PER_BATCH = 8


class StepTimer(keras.callbacks.Callback):
    """Wall time of each training step, from batch begin to batch end.

    Keras converts the step's logs to Python numbers before calling
    ``on_train_batch_end`` of a callback that defines it, so the end time is
    taken after the step's work has finished.
    """

    def __init__(self):
        super().__init__()
        self.seconds = []
        self._start = None

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def _resized(config, width, latent_dim, batch, steps, bank_size):
    """``config`` with other network widths, batch, sampler length and bank size."""
    return dataclasses.replace(
        config,
        networks=dataclasses.replace(config.networks, hat_width=width, generator_width=width, latent_dim=latent_dim),
        sampler=dataclasses.replace(config.sampler, num_steps=steps),
        training=dataclasses.replace(config.training, batch_size=batch, bank_size=bank_size),
    )


def digits_case(settings):
    """The shipped digits config (tiny: width 8) on the real digits."""
    config = load_config("digits")
    if settings.tiny:
        width, latent_dim, batch = TINY_DIGITS
        config = _resized(config, width, latent_dim, batch, settings.steps, TINY_BANK_SIZE)
    data = image_dataset(config.data.to_source(), config.training.batch_size, training=True, seed=config.seed)
    return config, data, "scikit-learn digits (real data)"


def cifar_case(settings):
    """``cifar10_synthesis`` at the sampler benchmark's width, batch and steps, on random images.

    TFDS cannot download CIFAR-10 offline; random images in [-1, 1] cost the
    same per step.
    """
    bank_size = TINY_BANK_SIZE if settings.tiny else CIFAR_BANK_SIZE
    config = _resized(
        load_config("cifar10_synthesis"), settings.width, settings.latent_dim, settings.batch, settings.steps, bank_size
    )
    shape = (config.data.image_size, config.data.image_size, config.data.channels)
    count = RANDOM_IMAGES_PER_BATCH * config.training.batch_size
    images = np.random.default_rng(config.seed).uniform(-1.0, 1.0, (count, *shape)).astype(np.float32)
    data = array_dataset(images, config.training.batch_size, training=True, seed=config.seed)
    return config, data, f"random uniform [-1, 1] images {list(shape)} (TFDS cannot download CIFAR-10 offline)"


def time_training(config, data, settings):
    """Median step time of ``settings.train_steps`` steps of one ``fit``, after ``train_warmup`` steps.

    The model is set up as ``hat_ebm_tf.training.train.run_training`` does (seeded,
    compiled by ``build_model``, banks initialised), without a strategy,
    checkpoints or callbacks other than the timer.
    """
    keras.utils.set_random_seed(config.seed)
    model = build_model(config)
    model.initialize_banks()
    timer = StepTimer()
    with warnings.catch_warnings():
        # Keras warns that its default shuffle=True is ignored for a tf.data
        # dataset; the pipelines shuffle themselves, seeded.
        warnings.filterwarnings("ignore", message="`shuffle=True` was passed")
        model.fit(
            data, epochs=1, steps_per_epoch=settings.train_warmup + settings.train_steps, callbacks=[timer], verbose=0
        )
    times = timer.seconds[settings.train_warmup :]
    steps_per_s = 1.0 / statistics.median(times)
    return {
        "seconds": statistics.median(times),
        "times": times,
        "steps_per_s": steps_per_s,
        "langevin_steps_per_s": steps_per_s * config.sampler.num_steps,
        "image_size": config.data.image_size,
        "hat_width": config.networks.hat_width,
        "generator_width": config.networks.generator_width,
        "latent_dim": config.networks.latent_dim,
        "batch_size": config.training.batch_size,
        "sampler_steps": config.sampler.num_steps,
        "bank_size": config.training.bank_size,
        "ema_momentum": config.training.ema_momentum,
    }


def training_figures(settings):
    """Section 4: ``{config name: timing and the config's sizes and data}``."""
    result = {}
    for case in (digits_case, cifar_case):
        config, data, description = case(settings)
        result[config.name] = {**time_training(config, data, settings), "data": description}
    return result
