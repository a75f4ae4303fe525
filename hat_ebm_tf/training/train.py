"""The training job: config → strategy → data → ``fit`` with checkpoints → run directory.

Run-directory files (public names):
    ``config.yaml``         the validated config that was run
    ``checkpoints/``        ``tf.train.CheckpointManager`` checkpoints (last K), for exact resume
    ``history.json``        per-epoch tracker values and steps, kept across resumes
    ``training_curve.png``  the trackers against steps
    ``model.keras``         the trained model (EMA weights), for ``hat-ebm sample``
    ``samples.npz``         ``images``: uint8 ``[N, H, W, C]`` drawn with the evaluation sampler
    ``samples.png``         a grid of the first samples
    ``quality.json``        the quality report of the samples, beside a floor, a baseline and the generator alone
    ``tensorboard/``        scalars and sample grids at training steps (when ``training.tensorboard_every``
                            is set); steps after the checkpoint a run resumes from are dropped
    ``workers/<id>/``       non-chief workers' checkpoints and model (multi-worker runs)
    ``.lock``               held by the process training in the directory (one at a time)

Running the same command again on a run directory resumes it from its last
checkpoint: weights, both optimizers with their EMA slots, the banks, the
step counter (hence the learning-rate schedule and every random draw, which
are functions of the step) and the data position. ``training.steps`` (e.g.
``--steps``, to extend a run) and ``training.steps_per_epoch`` may change on
resume; the rest of the config may not. A damaged newest checkpoint is
skipped, with a warning, for the newest one that reads back whole.
"""

import contextlib
import dataclasses
import fcntl
import gc
import json
import logging
import signal
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
import yaml

from hat_ebm_tf.autoencoder import Autoencoder
from hat_ebm_tf.data import distributed_dataset, image_dataset, model_range_to_uint8, read_source, uint8_to_model_range
from hat_ebm_tf.distribute import make_strategy
from hat_ebm_tf.errors import ConfigError, DataError, RunDirError, TrainingDiverged, TrainingInterrupted
from hat_ebm_tf.model import HatEBM
from hat_ebm_tf.modes import get_mode
from hat_ebm_tf.networks import Generator, HatNetwork, RetrofitDecoder, RetrofitEncoder
from hat_ebm_tf.optimizers import FusedAdam
from hat_ebm_tf.outputs import check_writable_dir, remove_stale_temporaries, write_atomically
from hat_ebm_tf.plots import save_image_grid, save_training_curves
from hat_ebm_tf.precision import global_policy
from hat_ebm_tf.quality.reference import reference_for
from hat_ebm_tf.quality.report import quality_report
from hat_ebm_tf.reference import decoder_from_reference, generator_from_reference
from hat_ebm_tf.run_dir import RunDir, check_run_dir
from hat_ebm_tf.training.callbacks import (
    DivergenceWatchdog,
    DriftAtClip,
    EpochRecords,
    LearningRateSchedule,
    QualityEvaluation,
    SampleGrid,
    StepsRunProgbar,
    StopOnSignal,
    TensorBoardAtSteps,
    load_history,
    piecewise_constant,
)
from hat_ebm_tf.training.moving_averages import MovingAverages
from hat_ebm_tf.training.tensorboard_log import drop_events_after

log = logging.getLogger("hat_ebm_tf.training")


def load_pretrained_generator(networks, out_factor):
    """The frozen generator of refine/retrofit from ``networks.generator_checkpoint``."""
    path = networks.generator_checkpoint
    if path is None:
        raise ConfigError("networks.generator_checkpoint is required in refine and retrofit modes")
    fitted = networks.latent_prior == "fitted"
    if str(path).endswith(".keras"):
        loaded = keras.saving.load_model(path)
        if isinstance(loaded, Autoencoder):
            return loaded.prior_decoder() if fitted else loaded.decoder
        if fitted:
            raise ConfigError(
                f"networks.latent_prior='fitted' needs an autoencoder run's model.keras; {path!r} holds a "
                f"{type(loaded).__name__}"
            )
        return loaded.generator if isinstance(loaded, HatEBM) else loaded
    if fitted:
        raise ConfigError(
            "networks.latent_prior='fitted' needs an autoencoder run's model.keras, not a reference checkpoint"
        )
    if networks.generator == "decoder":
        return decoder_from_reference(path, out_factor, latent_hw=(networks.latent_hw, networks.latent_hw))
    return generator_from_reference(path, out_factor)


def build_networks(config, pretrained=True):
    """``(hat, generator)`` of a config; ``pretrained=False`` builds a fresh generator even in joint modes."""
    nets, size, channels = config.networks, config.data.image_size, config.data.channels
    hat = HatNetwork(image_size=size, width=nets.hat_width, channels=channels)
    if pretrained and not get_mode(config.mode).trains_generator:
        return hat, load_pretrained_generator(nets, nets.out_factor)
    if nets.generator == "decoder":
        latent = (nets.latent_hw, nets.latent_hw, 1)
        return hat, RetrofitDecoder(nets.generator_width, channels, latent, nets.out_factor)
    return hat, Generator(size, nets.generator_width, channels, nets.latent_dim, nets.out_factor)


def build_model(config, pretrained=True):
    """The compiled model of an ``ExperimentConfig`` (``HatEBM``, or ``Autoencoder`` in autoencoder mode)."""
    train, mode = config.training, get_mode(config.mode)
    hat, generator = build_networks(config, pretrained)
    hat_lr = piecewise_constant(train.hat_learning_rate)(0)
    gen_lr = piecewise_constant(train.generator_learning_rate)(0)
    if not mode.hat_ebm:
        encoder = RetrofitEncoder(
            config.networks.generator_width, config.data.channels, image_size=config.data.image_size
        )
        model = Autoencoder(
            encoder,
            generator,
            train.data_epsilon,
            train.gen_loss_factor,
            seed=config.seed,
            prior_components=config.networks.prior_components,
        )
        model.compile(optimizer=FusedAdam(hat_lr))
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
        drift_weight=train.drift_weight,
        drift_target=train.drift_target,
    )
    ema = {"use_ema": True, "ema_momentum": train.ema_momentum} if train.ema_momentum else {}
    model.compile(
        hat_optimizer=FusedAdam(hat_lr, beta_1=0.9, beta_2=0.999, **ema),
        generator_optimizer=FusedAdam(gen_lr, beta_1=0.9, beta_2=0.999) if mode.trains_generator else None,
    )
    return model


def write_samples(model, run_dir, num, seed, batch_size, config=None):
    """Draw ``num`` samples; write ``samples.npz`` and ``samples.png``; return them (uint8)."""
    images = model_range_to_uint8(model.sample(num, seed=seed, batch_size=batch_size, config=config))
    np.savez_compressed(Path(run_dir) / RunDir.SAMPLES, images=images)
    save_image_grid(images[:100], Path(run_dir) / RunDir.SAMPLE_GRID)
    return images


def _worker_dir(run_dir, strategy):
    """The chief writes the run directory; other workers write ``workers/<id>/`` beside it."""
    resolver = getattr(strategy, "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None)
    task_id = getattr(resolver, "task_id", 0) or 0
    cluster = resolver.cluster_spec().as_dict() if resolver is not None else {}
    chief = task_type in (None, "chief") or (task_type == "worker" and task_id == 0 and "chief" not in cluster)
    return (run_dir, True) if chief else (RunDir(run_dir).worker(task_id).path, False)


def _lock(directory):
    """An exclusive lock on ``directory`` (held while the returned file stays open): one training per run."""
    handle = open(directory / RunDir.LOCK, "a")  # held open for the whole run
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise RunDirError(f"another process is training in {directory}") from None
    return handle


@contextlib.contextmanager
def _tensorflow_warnings_off():
    """Keep TensorFlow's Python warnings (its ``tensorflow`` logger) quiet in the block; errors still show."""
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _check_intact(path):
    """Read every tensor of a checkpoint, so that a truncated or corrupt file fails here, not mid-restore."""
    reader = tf.train.load_checkpoint(path)
    for name in reader.get_variable_to_shape_map():
        reader.get_tensor(name)


def restore_newest_intact(checkpoint, manager):
    """Restore the newest checkpoint of ``manager`` that reads back whole; return its path (None: there is none).

    A damaged checkpoint (e.g. truncated by a full disk) is skipped with a
    warning that names it, and the one before it is tried.

    Raises:
        RunDirError: every checkpoint is damaged.
    """
    damaged = []
    for path in reversed(manager.checkpoints):
        try:
            _check_intact(path)
        except (tf.errors.OpError, ValueError, IndexError, OSError) as err:
            reason = " ".join(str(err).split())[:200]
            log.warning("checkpoint %s is damaged (%s); trying the one before it", path, reason)
            damaged.append(path)
            continue
        checkpoint.restore(path).assert_existing_objects_matched()
        if damaged:
            log.warning("resumed from %s: the newer %s could not be read", path, ", ".join(damaged))
        return path
    if damaged:
        raise RunDirError(
            f"no intact checkpoint in {manager.directory} (damaged: {', '.join(damaged)}); move them away to train "
            "from the start"
        )
    return None


def next_segment(step, steps, steps_per_epoch):
    """The next ``fit`` call from ``step``: ``(steps_per_epoch, epochs)``.

    Epochs end at multiples of ``steps_per_epoch`` (and at ``steps``), where
    checkpoints are written: a run resumed mid-epoch first completes that
    epoch, and a last shorter epoch makes the run stop at exactly ``steps``.
    """
    head = -step % steps_per_epoch
    if head:
        return min(head, steps - step), 1
    if steps - step >= steps_per_epoch:
        return steps_per_epoch, (steps - step) // steps_per_epoch
    return steps - step, 1


def run_training(config, run_dir, verbose=1):
    """Train ``config`` (resuming from ``run_dir``'s last checkpoint) and write the run directory.

    Nothing is written before the run directory, the config, the model and
    the data source are checked. SIGINT and SIGTERM during training stop it
    after the current step with a checkpoint (``TrainingInterrupted``).

    Args:
        config: ``ExperimentConfig``.
        run_dir: output directory (created, or resumed).
        verbose: Keras verbosity (1: progress bar).

    Returns:
        dict summary: steps, wall times, rollbacks and (synthesis, refine, retrofit) the quality report.

    Raises:
        RunDirError: the run directory cannot take this run (see ``check_run_dir``).
        TrainingDiverged: the watchdog stopped training (after any rollbacks);
            the last checkpoint is intact.
        TrainingInterrupted: a signal stopped training; a checkpoint of the
            current step was written (or, after a divergence, the last good
            one kept), and the same call resumes.
    """
    # The config's policy for this run's networks (null: float32), whatever the caller's, which is kept.
    with global_policy(config.training.mixed_precision or "float32"):
        return _run(config, Path(run_dir), verbose)


def _run(config, run_dir, verbose):
    """``run_training``'s body, under the run's dtype policy."""
    train = config.training
    strategy = make_strategy(train.strategy, tpu=train.tpu)
    out_dir, chief = _worker_dir(run_dir, strategy)
    if chief:
        check_run_dir(run_dir, config)
    else:
        check_writable_dir(out_dir, "run directory")
    run = TrainingRun(config, strategy, out_dir, chief)
    run.restore()
    # Reading the source checks it (empty, smaller than a batch) before the run directory is written.
    first = run.dataset(run.step)
    out_dir.mkdir(parents=True, exist_ok=True)
    with _lock(out_dir):
        if chief:
            write_atomically(run_dir / RunDir.CONFIG, yaml.safe_dump(config.to_dict(), sort_keys=False))
        # The temporary directories of checkpoints whose writer was killed (this process holds the lock).
        for path in remove_stale_temporaries(out_dir / RunDir.CHECKPOINTS, "*_temp"):
            log.info("removed the incomplete checkpoint %s", path)
        start = time.time()
        rollbacks = run.train(first, verbose)
        summary = {"train_seconds": time.time() - start, "steps": run.step, "rollbacks": rollbacks}
        run.write_outputs()
        if chief and isinstance(run.model, HatEBM):
            summary.update(evaluate(config, run.model, run_dir))
        return summary


class TrainingRun:
    """One worker's training of a config: the model, its checkpoints, the learning-rate scale and its directory.

    Built in ``strategy``'s scope, with seeded initialisation (the same config
    gives the same run). ``restore`` resumes it from its newest intact
    checkpoint; ``train`` fits it to ``training.steps`` one segment
    (``fit_segment``) at a time, each ending at a checkpoint, and
    ``roll_back`` returns it to its last checkpoint after a divergence.

    Args:
        config: ``ExperimentConfig``.
        strategy: the ``tf.distribute`` strategy.
        out_dir: this worker's directory (checkpoints, history; on the chief, the run directory).
        chief: whether this worker writes the run's logs (TensorBoard, sample grids, quality figures).

    Attributes:
        model: the compiled model (``HatEBM``, or ``Autoencoder`` in autoencoder mode).
        checkpoint: the ``tf.train.Checkpoint`` of the model, its optimizers and ``lr_scale``.
        manager: its ``tf.train.CheckpointManager`` in ``out_dir/checkpoints``.
        lr_scale: the rollbacks' learning-rate factor, a checkpointed variable.
        weights: the model's ``MovingAverages``.
        rollbacks: the rollbacks made so far.
    """

    def __init__(self, config, strategy, out_dir, chief):
        self.config, self.strategy, self.out_dir, self.chief = config, strategy, Path(out_dir), chief
        keras.utils.set_random_seed(config.seed)
        with strategy.scope():
            self.model = build_model(config)
            self.lr_scale = tf.Variable(1.0, trainable=False, name="lr_scale")
            optimizers = {"hat_optimizer": self.model.optimizer}
            if getattr(self.model, "generator_optimizer", None) is not None:
                optimizers["generator_optimizer"] = self.model.generator_optimizer
            self.checkpoint = tf.train.Checkpoint(model=self.model, lr_scale=self.lr_scale, **optimizers)
            self.manager = tf.train.CheckpointManager(
                self.checkpoint, self.out_dir / RunDir.CHECKPOINTS, max_to_keep=config.training.checkpoints_to_keep
            )
        self.weights = MovingAverages(self.model)
        self.rollbacks = 0
        # One for the whole run, so that it warns once, however many fit calls the run takes.
        self.drift_at_clip = DriftAtClip(
            config.sampler.max_residual_norm if isinstance(self.model, HatEBM) else None,
            "training.drift_weight (drift regularisation; the derived recipe of `hat-ebm train --data` sets it), "
            "or lower sampler.step_size",
        )

    @property
    def step(self):
        """The model's training step (the optimizer's counter)."""
        return int(self.model.optimizer.iterations.numpy())

    def restore(self):
        """Restore the newest intact checkpoint, or start afresh (a ``HatEBM`` fills its banks); its path or None.

        Raises:
            RunDirError: the checkpoints are not of this config's model (e.g.
                a hand-edited ``config.yaml`` with another network width).
        """
        with self.strategy.scope(), _tensorflow_warnings_off():
            mismatch = None
            try:
                resumed = restore_newest_intact(self.checkpoint, self.manager)
            except (ValueError, tf.errors.OpError) as err:
                if isinstance(err, RunDirError):
                    raise
                mismatch = " ".join(str(err).split())[:300].rstrip(".")
            if mismatch is not None:
                # The objects of the failed restore, freed here: at exit, TensorFlow would warn of their unrestored
                # values below the error.
                self.model = self.checkpoint = self.manager = self.weights = None
                gc.collect()
                raise RunDirError(
                    f"{self.out_dir}'s config no longer matches its checkpoints (was {RunDir.CONFIG} edited?): "
                    f"{mismatch}; train with the config the checkpoints were written with, or use a new --run-dir"
                )
            if resumed:
                log.info("resumed from %s", resumed)
            elif isinstance(self.model, HatEBM):
                self.model.initialize_banks()
        return resumed

    def dataset(self, step):
        """The training data from ``step`` on (the batches an uninterrupted run reads from there)."""
        config = self.config
        source, batch_size = config.data.to_source().train_and_held_out()[0], config.training.batch_size
        if self.strategy.num_replicas_in_sync > 1:
            return distributed_dataset(self.strategy, source, batch_size, seed=config.seed, start_step=step)
        return image_dataset(source, batch_size, training=True, seed=config.seed, start_step=step)

    def train(self, first, verbose):
        """Train to ``training.steps`` in ``fit`` calls that end at checkpoints; roll back on a divergence.

        Args:
            first: the data of the first ``fit`` call (already read, to check the source).
            verbose: Keras verbosity.

        Returns:
            The number of rollbacks.

        Raises:
            TrainingDiverged: the watchdog stopped training (after any rollbacks).
            TrainingInterrupted: a signal stopped training, after a checkpoint.
        """
        steps, data = self.config.training.steps, first
        # Steps logged after the checkpoint resumed from (by a killed or interrupted run) are trained again.
        drop_events_after(self.out_dir / RunDir.TENSORBOARD, self.step)
        with StopOnSignal() as stop:
            while (step := self.step) < steps:
                if stop.signum is not None:  # between two fit calls: nothing trained since the last checkpoint
                    self._interrupted(stop.signum, None, None)
                records, watchdog = self.fit_segment(self.dataset(step) if data is None else data, stop, verbose)
                data = None
                if stop.signum is not None:
                    self._interrupted(stop.signum, records, watchdog)
                if watchdog.diverged is not None:
                    self.roll_back(watchdog.diverged)
        if step > steps:
            log.warning("the run is at step %d, past training.steps=%d: nothing to train", step, steps)
        return self.rollbacks

    def fit_segment(self, data, stop, verbose):
        """One ``fit`` call, from the current step to the next epoch end(s) where checkpoints are written.

        Args:
            data: the training data from the current step on.
            stop: the run's ``StopOnSignal``.
            verbose: Keras verbosity.

        Returns:
            ``(records, watchdog)``: the segment's ``EpochRecords`` and ``DivergenceWatchdog``.
        """
        train, step = self.config.training, self.step
        steps_per_epoch, epochs = next_segment(step, train.steps, train.steps_per_epoch)
        watchdog = DivergenceWatchdog(train.max_energy_gap)
        records = EpochRecords(
            self.manager, self.out_dir / RunDir.HISTORY, self.model.optimizer.iterations, self.weights, self._quality()
        )
        # The records last: what the other callbacks write at an epoch end is on disk before its checkpoint.
        callbacks = [
            self._learning_rates(),
            watchdog,
            self.drift_at_clip,
            stop,
            StepsRunProgbar(),
            *self._logging_callbacks(),
            records,
        ]
        first_epoch = step // train.steps_per_epoch  # Keras's epoch numbers, for its logs
        self.model.fit(
            data,
            initial_epoch=first_epoch,
            epochs=first_epoch + epochs,
            steps_per_epoch=steps_per_epoch,
            callbacks=callbacks,
            verbose=verbose,
            shuffle=False,  # the pipeline shuffles (strategy-safe); Keras would only warn
        )
        self.weights.restore_trained()  # fit ended by swapping the moving averages in
        return records, watchdog

    def roll_back(self, diverged):
        """After a divergence: restore the last checkpoint and lower the learning rates, or raise ``TrainingDiverged``.

        Args:
            diverged: the watchdog's message.
        """
        train, last = self.config.training, self.manager.latest_checkpoint
        if train.on_divergence != "rollback" or self.rollbacks >= train.max_rollbacks or not last:
            raise TrainingDiverged(f"{diverged}; the last good checkpoint is {last}")
        self.rollbacks += 1
        scale = float(self.lr_scale.numpy()) * train.rollback_lr_factor
        restored = restore_newest_intact(self.checkpoint, self.manager)  # this restores lr_scale too: set it after
        self.lr_scale.assign(scale)
        drop_events_after(self.out_dir / RunDir.TENSORBOARD, self.step)
        log.warning(
            "%s; rollback %d/%d to %s with learning rates scaled by %.4g",
            diverged,
            self.rollbacks,
            train.max_rollbacks,
            restored,
            float(self.lr_scale.numpy()),
        )

    def write_outputs(self):
        """Write the trained model (its moving-average weights) and the training curve into ``out_dir``.

        An autoencoder first fits its latent prior to the codes of its training images (``latent_prior: fitted``
        of a retrofit run reads it).
        """
        self.weights.swap_in()
        if isinstance(self.model, Autoencoder):
            # Up to 10 000 codes: plenty for a covariance of the latent grid, and bounded memory for a large set.
            self.model.fit_latent_prior(read_source(self.config.data.to_source().train_and_held_out()[0], limit=10_000))
        self.model.save(self.out_dir / RunDir.MODEL)
        history = load_history(self.out_dir / RunDir.HISTORY)
        if history:
            steps = history.pop("step")
            save_training_curves(steps, history, self.out_dir / RunDir.TRAINING_CURVE)

    def _interrupted(self, signum, records, watchdog):
        """After a signal: checkpoint this step with ``records`` (unless it diverged); raise ``TrainingInterrupted``."""
        name, latest = signal.Signals(signum).name, self.manager.latest_checkpoint
        if watchdog is not None and watchdog.diverged is not None:
            done = f"{watchdog.diverged}; kept the last good checkpoint {latest}"
        elif records is None:
            done = f"the last checkpoint is {latest or 'none (nothing was trained)'}"
        else:
            done = f"wrote the checkpoint {records.save()}"
        raise TrainingInterrupted(
            f"{name} at step {self.step}: {done}; run the same `hat-ebm train` command again to resume", signum
        )

    def _learning_rates(self):
        """The callback that sets each optimizer's learning rate from its schedule, times ``lr_scale``."""
        train, model = self.config.training, self.model
        schedules = [(model.optimizer, train.hat_learning_rate)]
        if getattr(model, "generator_optimizer", None) is not None:
            schedules.append((model.generator_optimizer, train.generator_learning_rate))
        return LearningRateSchedule(schedules, self.lr_scale)

    def _board(self):
        """The chief's TensorBoard directory when the config asks for TensorBoard, else None."""
        return self.out_dir / RunDir.TENSORBOARD if self.config.training.tensorboard_every and self.chief else None

    def _logging_callbacks(self):
        """The chief's TensorBoard logs and sample grids, as the config asks."""
        every, board = self.config.training.tensorboard_every, self._board()
        if board is None:
            return []
        callbacks = [TensorBoardAtSteps(str(board), update_freq=every)]
        if isinstance(self.model, HatEBM):
            callbacks.append(SampleGrid(board, every))
        return callbacks

    def _quality(self):
        """The chief's ``QualityEvaluation`` when the config asks for one (``evaluation.every``), else None."""
        evaluation = self.config.evaluation
        if not (evaluation.every and self.chief):
            return None
        reference = quality_reference(self.config)
        if reference is None:
            return None
        seed = self.config.seed + 1  # the seed of the run's samples
        return QualityEvaluation(
            reference,
            evaluation.every,
            evaluation.quality_samples,
            seed,
            evaluation.batch_size,
            evaluation.sampler,
            self._board(),
        )


def quality_reference(config):
    """The ``QualityReference`` of a config's data (what the run's samples are compared with), or None.

    None, with a warning, when the data set has too few held-out images for
    the report (a folder of fewer than ``HOLD_OUT_EVERY`` images holds none out).
    """
    try:
        return reference_for(config.data.to_source())
    except DataError as err:
        log.warning("no quality report: %s", err)
        return None


def evaluate(config, model, run_dir):
    """Draw the run's samples (``samples.npz``, ``samples.png``) and score them (``quality.json``).

    Returns:
        dict: ``sample_seconds`` and ``quality`` (the ``quality_report``, when the data allows one).
    """
    start = time.time()
    evaluation = config.evaluation
    samples = write_samples(
        model, run_dir, evaluation.num_samples, config.seed + 1, evaluation.batch_size, evaluation.sampler
    )
    summary = {"sample_seconds": time.time() - start}
    if len(samples) < 2:
        log.warning("no quality.json: its Fréchet distance needs at least 2 samples (evaluation.num_samples)")
        return summary
    reference = quality_reference(config)
    if reference is None:
        return summary
    # The base generator alone (the chain's initial state, 0 Langevin steps): what the Hat EBM improves on.
    base = dataclasses.replace(evaluation.sampler or model.sampler_config, num_steps=0)
    generated = model.sample(
        evaluation.num_samples, seed=config.seed + 1, batch_size=evaluation.batch_size, config=base
    )
    summary["quality"] = quality_report(
        uint8_to_model_range(samples).numpy(), reference, generated=np.clip(generated.numpy(), -1.0, 1.0)
    )
    write_atomically(Path(run_dir) / RunDir.QUALITY, json.dumps(summary["quality"], indent=1))
    summary["quality_seconds"] = time.time() - start - summary["sample_seconds"]
    return summary
