"""Keras callbacks of the training job: checkpoints, learning-rate schedule, watchdog, sample grids."""

import json
import math
import os
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from hat_ebm_tf.data import model_range_to_uint8
from training.plots import image_grid


def as_float(value):
    """A logged tracker value as a float (multi-worker runs log one value per replica: their mean)."""
    return float(np.mean(value))


class TrainingDiverged(RuntimeError):
    """Training stopped on a non-finite or out-of-bounds quantity; the message names the step and quantity."""


def piecewise_constant(schedule):
    """A step → learning-rate function from a float or the reference's ``[[lr, from_step], ...]``."""
    if isinstance(schedule, (int, float)):
        return lambda step: float(schedule)
    steps = [int(s) for _, s in schedule]
    rates = [float(r) for r, _ in schedule]
    return lambda step: rates[np.searchsorted(steps, step, side="right") - 1]


class LearningRateSchedule(keras.callbacks.Callback):
    """Set each optimizer's learning rate from its schedule before every step.

    The rate is a function of the optimizer's step counter (so it resumes
    exactly) times ``scale``, a variable saved with the checkpoints that a
    watchdog rollback lowers.

    Args:
        schedules: list of ``(optimizer, schedule)`` with schedule a float or
            ``[[lr, from_step], ...]``.
        scale: scalar float ``tf.Variable``.
    """

    def __init__(self, schedules, scale):
        super().__init__()
        self.schedules = [(opt, piecewise_constant(s)) for opt, s in schedules if opt is not None]
        self.scale = scale

    def on_train_batch_begin(self, batch, logs=None):
        scale = float(self.scale.numpy())
        for optimizer, rate in self.schedules:
            optimizer.learning_rate.assign(rate(int(optimizer.iterations.numpy())) * scale)


class CheckpointEveryEpoch(keras.callbacks.Callback):
    """Save a ``tf.train.CheckpointManager`` checkpoint at every healthy epoch end.

    Checkpoints are written to temporary files and renamed by TensorFlow, and
    the manager's state file is replaced atomically, so a killed process
    leaves the previous checkpoint loadable. Nothing is saved once training
    has been stopped (e.g. by the watchdog), so the last checkpoint stays good.
    """

    def __init__(self, manager, step_variable):
        super().__init__()
        self.manager = manager
        self.step_variable = step_variable

    def on_epoch_end(self, epoch, logs=None):
        if not self.model.stop_training:
            self.manager.save(checkpoint_number=int(self.step_variable.numpy()))


class DivergenceWatchdog(keras.callbacks.Callback):
    """Stop training on a non-finite tracker or an energy gap beyond a bound.

    Checks the trackers after every step (the values shown by the progress
    bar: running means over the epoch, so a NaN shows at once). On a problem
    it stops training and keeps the message in ``self.diverged``.

    Args:
        max_energy_gap: bound on ``|energy_diff|``, or None.
        quantities: tracker names to check for finiteness.
    """

    QUANTITIES = ("loss", "energy_diff", "gen_loss", "grad_norm_latent", "grad_norm_res", "hat_grad_norm")

    def __init__(self, max_energy_gap=None, quantities=QUANTITIES):
        super().__init__()
        self.max_energy_gap = max_energy_gap
        self.quantities = quantities
        self.diverged = None

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        step = int(self.model.optimizer.iterations.numpy())
        values = {name: as_float(logs[name]) for name in self.quantities if name in logs}
        for name, value in values.items():
            if not math.isfinite(value):
                self._stop(f"training diverged at step {step}: {name} is {value}")
                return
        gap = values.get("energy_diff")
        if self.max_energy_gap is not None and gap is not None and abs(gap) > self.max_energy_gap:
            self._stop(
                f"training diverged at step {step}: |energy_diff| = {abs(gap):.4g} exceeds "
                f"max_energy_gap = {self.max_energy_gap:.4g}"
            )

    def _stop(self, message):
        self.diverged = message
        self.model.stop_training = True


class SampleGrid(keras.callbacks.Callback):
    """Write a grid of samples to TensorBoard every ``every`` steps (seeded, so grids are comparable)."""

    def __init__(self, log_dir, every, num=36, seed=1234):
        super().__init__()
        self.writer = tf.summary.create_file_writer(str(log_dir))
        self.every, self.num, self.seed = every, num, seed

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        if step % self.every == 0:
            grid = image_grid(model_range_to_uint8(self.model.sample(self.num, seed=self.seed)))
            with self.writer.as_default():
                tf.summary.image("samples", grid[None], step=step)
            self.writer.flush()


class HistoryLog(keras.callbacks.Callback):
    """Keep ``history.json`` (``{"step": [...], tracker: [...]}``) up to date at every epoch end.

    The file survives resumes: entries past the resumed step (epochs that ran
    after the last checkpoint) are dropped before new ones are added. It is
    replaced atomically, so a kill never leaves it half-written.
    """

    def __init__(self, path, step_variable):
        super().__init__()
        self.path = Path(path)
        self.step_variable = step_variable

    def on_train_begin(self, logs=None):
        self.history = load_history(self.path)
        keep = sum(1 for s in self.history.get("step", []) if s <= int(self.step_variable.numpy()))
        self.history = {name: values[:keep] for name, values in self.history.items()}

    def on_epoch_end(self, epoch, logs=None):
        if self.model.stop_training:
            return
        row = {"step": int(self.step_variable.numpy()), **{k: as_float(v) for k, v in (logs or {}).items()}}
        for name, value in row.items():
            self.history.setdefault(name, []).append(value)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.history, indent=1))
        os.replace(tmp, self.path)


def load_history(path):
    """The ``history.json`` of a run directory, or ``{}``."""
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else {}
