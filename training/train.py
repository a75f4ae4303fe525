"""The training job: config → data → ``HatEBM.fit`` → run directory.

Run-directory files (public names):
    ``config.yaml``         the validated config that was run
    ``model.keras``         the trained model (EMA weights), for ``hat-ebm sample``
    ``history.json``        per-epoch tracker values
    ``training_curve.png``  the trackers against steps
    ``samples.npz``         ``images``: uint8 ``[N, H, W, C]`` drawn with the trained sampler
    ``samples.png``         a grid of the first samples
    ``quality.json``        digits classifier figures (digits source only)
"""

import json
import time
from pathlib import Path

import keras
import numpy as np
import yaml

from hat_ebm_tf.data import image_dataset, load_digits, model_range_to_uint8, uint8_to_model_range
from hat_ebm_tf.metrics import DIGITS_CLASSIFIER_TRAIN, digits_classifier_report
from hat_ebm_tf.model import HatEBM
from hat_ebm_tf.networks import Generator, HatNetwork
from training.commands.common import MODEL_FILE
from training.plots import save_image_grid, save_training_curves

SAMPLES_FILE = "samples.npz"


def build_model(config):
    """The ``HatEBM`` of an ``ExperimentConfig``, compiled."""
    nets, train = config.networks, config.training
    size, channels = config.data.image_size, config.data.channels
    model = HatEBM(
        hat=HatNetwork(image_size=size, width=nets.hat_width, channels=channels),
        generator=Generator(
            image_size=size,
            width=nets.generator_width,
            channels=channels,
            latent_dim=nets.latent_dim,
            out_factor=nets.out_factor,
        ),
        mode=config.mode,
        sampler=config.sampler,
        data_epsilon=train.data_epsilon,
        gen_loss_factor=train.gen_loss_factor,
        bank_size=train.bank_size,
        max_grad_norm=train.max_grad_norm,
        seed=config.seed,
    )
    ema = {"use_ema": True, "ema_momentum": train.ema_momentum} if train.ema_momentum else {}
    model.compile(
        hat_optimizer=keras.optimizers.Adam(train.hat_learning_rate, beta_1=0.9, beta_2=0.999, **ema),
        generator_optimizer=keras.optimizers.Adam(train.generator_learning_rate, beta_1=0.9, beta_2=0.999),
    )
    return model


def write_samples(model, run_dir, num, seed, batch_size, config=None):
    """Draw ``num`` samples; write ``samples.npz`` and ``samples.png``; return them (uint8)."""
    images = model_range_to_uint8(model.sample(num, seed=seed, batch_size=batch_size, config=config))
    np.savez_compressed(Path(run_dir) / SAMPLES_FILE, images=images)
    save_image_grid(images[:100], Path(run_dir) / "samples.png")
    return images


def run_training(config, run_dir, verbose=1):
    """Train ``config`` and write the run directory.

    Args:
        config: ``ExperimentConfig``.
        run_dir: output directory (created).
        verbose: Keras verbosity (1: progress bar).

    Returns:
        dict summary: wall times and, for digits, the quality figures.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    train = config.training
    model = build_model(config)
    epochs = max(1, train.steps // train.steps_per_epoch)
    start = time.time()
    history = model.fit(
        image_dataset(config.data.to_source(), train.batch_size, training=True, seed=config.seed),
        epochs=epochs,
        steps_per_epoch=train.steps_per_epoch,
        callbacks=[keras.callbacks.TerminateOnNaN()],
        verbose=verbose,
    )
    train_seconds = time.time() - start
    model.save(run_dir / MODEL_FILE)
    steps = [train.steps_per_epoch * (i + 1) for i in range(len(history.epoch))]
    (run_dir / "history.json").write_text(json.dumps({"step": steps, **history.history}, indent=1))
    save_training_curves(steps, history.history, run_dir / "training_curve.png")

    start = time.time()
    evaluation = config.evaluation
    samples = write_samples(
        model, run_dir, evaluation.num_samples, config.seed + 1, evaluation.batch_size, evaluation.sampler
    )
    summary = {"train_seconds": train_seconds, "sample_seconds": time.time() - start, "steps": steps[-1]}
    if config.data.source == "digits":
        floats = uint8_to_model_range(samples).numpy()
        summary["quality"] = {
            "samples": digits_classifier_report(floats),
            "real_held_out": digits_classifier_report(load_digits(config.data.image_size)[DIGITS_CLASSIFIER_TRAIN:]),
        }
        (run_dir / "quality.json").write_text(json.dumps(summary["quality"], indent=1))
    return summary
