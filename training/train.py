"""The training job: config → strategy → data → ``fit`` with checkpoints → run directory.

Run-directory files (public names):
    ``config.yaml``         the validated config that was run
    ``checkpoints/``        ``tf.train.CheckpointManager`` checkpoints (last K), for exact resume
    ``history.json``        per-epoch tracker values and steps, kept across resumes
    ``training_curve.png``  the trackers against steps
    ``model.keras``         the trained model (EMA weights), for ``hat-ebm sample``
    ``samples.npz``         ``images``: uint8 ``[N, H, W, C]`` drawn with the trained sampler
    ``samples.png``         a grid of the first samples
    ``quality.json``        digits classifier figures (digits source only)
    ``tensorboard/``        scalars and sample grids (when ``training.tensorboard_every`` is set)
    ``workers/<id>/``       non-chief workers' checkpoints and model (multi-worker runs)

Running the same command again on a run directory resumes it from its last
checkpoint: weights, both optimizers with their EMA slots, the banks, the
step counter (hence the learning-rate schedule and every random draw, which
are functions of the step) and the data position.
"""

import json
import logging
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
import yaml

from hat_ebm_tf.autoencoder import Autoencoder
from hat_ebm_tf.data import distributed_dataset, image_dataset, load_digits, model_range_to_uint8, uint8_to_model_range
from hat_ebm_tf.distribute import make_strategy
from hat_ebm_tf.metrics import DIGITS_CLASSIFIER_TRAIN, digits_classifier_report
from hat_ebm_tf.model import HatEBM
from hat_ebm_tf.networks import Generator, HatNetwork, RetrofitDecoder, RetrofitEncoder
from hat_ebm_tf.reference import decoder_from_reference, generator_from_reference
from training.callbacks import (
    CheckpointEveryEpoch,
    DivergenceWatchdog,
    HistoryLog,
    LearningRateSchedule,
    SampleGrid,
    TrainingDiverged,
    load_history,
    piecewise_constant,
)
from training.commands.common import MODEL_FILE
from training.config import ConfigError
from training.plots import save_image_grid, save_training_curves

SAMPLES_FILE = "samples.npz"
log = logging.getLogger("hat_ebm_tf.training")


def load_pretrained_generator(networks, out_factor):
    """The frozen generator of refine/retrofit from ``networks.generator_checkpoint``."""
    path = networks.generator_checkpoint
    if path is None:
        raise ConfigError("networks.generator_checkpoint is required in refine and retrofit modes")
    if str(path).endswith(".keras"):
        import hat_ebm_tf  # noqa: F401 - registers the classes

        loaded = keras.saving.load_model(path)
        return {Autoencoder: lambda m: m.decoder, HatEBM: lambda m: m.generator}.get(type(loaded), lambda m: m)(loaded)
    if networks.generator == "decoder":
        return decoder_from_reference(path, out_factor, latent_hw=(networks.latent_hw, networks.latent_hw))
    return generator_from_reference(path, out_factor)


def build_networks(config, pretrained=True):
    """``(hat, generator)`` of a config; ``pretrained=False`` builds a fresh generator even in joint modes."""
    nets, size, channels = config.networks, config.data.image_size, config.data.channels
    hat = HatNetwork(image_size=size, width=nets.hat_width, channels=channels)
    if pretrained and config.mode in ("refine", "retrofit"):
        return hat, load_pretrained_generator(nets, nets.out_factor)
    if nets.generator == "decoder":
        latent = (nets.latent_hw, nets.latent_hw, 1)
        return hat, RetrofitDecoder(nets.generator_width, channels, latent, nets.out_factor)
    return hat, Generator(size, nets.generator_width, channels, nets.latent_dim, nets.out_factor)


def build_model(config, pretrained=True):
    """The compiled model of an ``ExperimentConfig`` (``HatEBM``, or ``Autoencoder`` in autoencoder mode)."""
    train = config.training
    hat, generator = build_networks(config, pretrained)
    hat_lr = piecewise_constant(train.hat_learning_rate)(0)
    gen_lr = piecewise_constant(train.generator_learning_rate)(0)
    if config.mode == "autoencoder":
        encoder = RetrofitEncoder(
            config.networks.generator_width, config.data.channels, image_size=config.data.image_size
        )
        model = Autoencoder(encoder, generator, train.data_epsilon, train.gen_loss_factor, seed=config.seed)
        model.compile(optimizer=keras.optimizers.Adam(hat_lr))
        return model
    model = HatEBM(
        hat=hat,
        generator=generator,
        mode=config.mode,
        sampler=config.sampler,
        data_epsilon=train.data_epsilon,
        gen_loss_factor=train.gen_loss_factor,
        bank_size=train.bank_size,
        max_grad_norm=train.max_grad_norm,
        jit_sampler=train.jit_sampler,
        seed=config.seed,
    )
    ema = {"use_ema": True, "ema_momentum": train.ema_momentum} if train.ema_momentum else {}
    model.compile(
        hat_optimizer=keras.optimizers.Adam(hat_lr, beta_1=0.9, beta_2=0.999, **ema),
        generator_optimizer=keras.optimizers.Adam(gen_lr, beta_1=0.9, beta_2=0.999)
        if config.mode == "synthesis"
        else None,
    )
    return model


def write_samples(model, run_dir, num, seed, batch_size, config=None):
    """Draw ``num`` samples; write ``samples.npz`` and ``samples.png``; return them (uint8)."""
    images = model_range_to_uint8(model.sample(num, seed=seed, batch_size=batch_size, config=config))
    np.savez_compressed(Path(run_dir) / SAMPLES_FILE, images=images)
    save_image_grid(images[:100], Path(run_dir) / "samples.png")
    return images


def _worker_dir(run_dir, strategy):
    """The chief writes the run directory; other workers write ``workers/<id>/`` beside it."""
    resolver = getattr(strategy, "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None)
    task_id = getattr(resolver, "task_id", 0) or 0
    cluster = resolver.cluster_spec().as_dict() if resolver is not None else {}
    chief = task_type in (None, "chief") or (task_type == "worker" and task_id == 0 and "chief" not in cluster)
    return (run_dir, True) if chief else (run_dir / "workers" / str(task_id), False)


def _check_resumable(run_dir, config):
    saved = run_dir / "config.yaml"
    current = config.to_dict()
    if saved.is_file():
        previous = yaml.safe_load(saved.read_text())
        for section in (previous, current):
            section["training"].pop("steps", None)
        if previous != current:
            raise ConfigError(
                f"{run_dir} holds a run with a different config; use a new --run-dir, or the same config "
                "(only training.steps may change on resume)"
            )
    saved.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))


def run_training(config, run_dir, verbose=1):
    """Train ``config`` (resuming from ``run_dir``'s last checkpoint) and write the run directory.

    Args:
        config: ``ExperimentConfig``.
        run_dir: output directory (created, or resumed).
        verbose: Keras verbosity (1: progress bar).

    Returns:
        dict summary: steps, wall times and, for digits, the quality figures.

    Raises:
        TrainingDiverged: the watchdog stopped training (after any rollbacks);
            the last checkpoint is intact.
    """
    run_dir = Path(run_dir)
    train = config.training
    if train.mixed_precision:
        keras.mixed_precision.set_global_policy(train.mixed_precision)
    strategy = make_strategy(train.strategy, tpu=train.tpu)
    out_dir, chief = _worker_dir(run_dir, strategy)
    out_dir.mkdir(parents=True, exist_ok=True)
    if chief:
        _check_resumable(run_dir, config)
    # Network initialisation is seeded too: the same config gives the same run.
    keras.utils.set_random_seed(config.seed)
    with strategy.scope():
        model = build_model(config)
        lr_scale = tf.Variable(1.0, trainable=False, name="lr_scale")
        optimizers = {"hat_optimizer": model.optimizer}
        if getattr(model, "generator_optimizer", None) is not None:
            optimizers["generator_optimizer"] = model.generator_optimizer
        checkpoint = tf.train.Checkpoint(model=model, lr_scale=lr_scale, **optimizers)
        manager = tf.train.CheckpointManager(checkpoint, out_dir / "checkpoints", max_to_keep=train.checkpoints_to_keep)
        if manager.latest_checkpoint:
            checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
            log.info("resumed from %s", manager.latest_checkpoint)
        elif isinstance(model, HatEBM):
            model.initialize_banks()

    source = config.data.to_source()
    epochs = max(1, train.steps // train.steps_per_epoch)
    rollbacks, start = 0, time.time()
    while True:
        step = int(model.optimizer.iterations.numpy())
        if strategy.num_replicas_in_sync > 1:
            data = distributed_dataset(strategy, source, train.batch_size, seed=config.seed, start_step=step)
        else:
            data = image_dataset(source, train.batch_size, training=True, seed=config.seed, start_step=step)
        watchdog = DivergenceWatchdog(train.max_energy_gap)
        schedules = [(model.optimizer, train.hat_learning_rate)]
        if "generator_optimizer" in optimizers:
            schedules.append((model.generator_optimizer, train.generator_learning_rate))
        callbacks = [
            LearningRateSchedule(schedules, lr_scale),
            watchdog,
            CheckpointEveryEpoch(manager, model.optimizer.iterations),
            HistoryLog(out_dir / "history.json", model.optimizer.iterations),
        ]
        if train.tensorboard_every and chief:
            board = out_dir / "tensorboard"
            callbacks.append(keras.callbacks.TensorBoard(str(board), update_freq=train.tensorboard_every))
            if isinstance(model, HatEBM):
                callbacks.append(SampleGrid(board, train.tensorboard_every))
        model.fit(
            data,
            initial_epoch=step // train.steps_per_epoch,
            epochs=epochs,
            steps_per_epoch=train.steps_per_epoch,
            callbacks=callbacks,
            verbose=verbose,
        )
        if watchdog.diverged is None:
            break
        if train.on_divergence != "rollback" or rollbacks >= train.max_rollbacks or not manager.latest_checkpoint:
            raise TrainingDiverged(f"{watchdog.diverged}; the last good checkpoint is {manager.latest_checkpoint}")
        rollbacks += 1
        scale = float(lr_scale.numpy()) * train.rollback_lr_factor
        checkpoint.restore(manager.latest_checkpoint)  # this restores lr_scale too: set it after
        lr_scale.assign(scale)
        log.warning(
            "%s; rollback %d/%d to %s with learning rates scaled by %.4g",
            watchdog.diverged,
            rollbacks,
            train.max_rollbacks,
            manager.latest_checkpoint,
            float(lr_scale.numpy()),
        )

    summary = {
        "train_seconds": time.time() - start,
        "steps": int(model.optimizer.iterations.numpy()),
        "rollbacks": rollbacks,
    }
    model.save(out_dir / MODEL_FILE)
    history = load_history(out_dir / "history.json")
    if history:
        steps = history.pop("step")
        save_training_curves(steps, history, out_dir / "training_curve.png")
    if not chief or not isinstance(model, HatEBM):
        return summary

    start = time.time()
    evaluation = config.evaluation
    samples = write_samples(
        model, run_dir, evaluation.num_samples, config.seed + 1, evaluation.batch_size, evaluation.sampler
    )
    summary["sample_seconds"] = time.time() - start
    if config.data.source == "digits":
        floats = uint8_to_model_range(samples).numpy()
        summary["quality"] = {
            "samples": digits_classifier_report(floats),
            "real_held_out": digits_classifier_report(load_digits(config.data.image_size)[DIGITS_CLASSIFIER_TRAIN:]),
        }
        (run_dir / "quality.json").write_text(json.dumps(summary["quality"], indent=1))
    return summary
