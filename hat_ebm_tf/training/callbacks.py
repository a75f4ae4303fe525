"""Keras callbacks of the training job: its records (history rows, checkpoints, quality figures), learning-rate
schedule, watchdog, TensorBoard logs, sample grids and signals."""

import json
import logging
import math
import os
import signal
import sys
import threading
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from hat_ebm_tf.data import model_range_to_uint8, uint8_to_model_range
from hat_ebm_tf.outputs import write_atomically
from hat_ebm_tf.plots import image_grid
from hat_ebm_tf.quality.report import score
from hat_ebm_tf.training.moving_averages import MovingAverages

log = logging.getLogger("hat_ebm_tf.training")


def as_float(value):
    """A logged tracker value as a float (multi-worker runs log one value per replica: their mean)."""
    return float(np.mean(value))


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


class EpochRecords(keras.callbacks.Callback):
    """The run's records of every epoch, in their one order: quality figures, ``history.json`` row, checkpoint.

    After every step it runs the quality evaluation when one is due, and
    keeps the step's logs (for ``save`` between epoch ends). At every epoch
    end it keeps the trained weights (``MovingAverages.keep_trained``: ``fit``
    swaps their averages in as it returns, and the run puts them back), adds
    the epoch's quality figures to the epoch's logs (NaN for an epoch
    without an evaluation; the progress bar shows them too), and, unless
    training was stopped (e.g. by the watchdog, so that the last checkpoint
    stays good), saves: the row of the step, then the checkpoint.

    ``history.json`` (``{"step": [...], tracker: [...]}``) is replaced
    atomically; checkpoints are written to temporary files and renamed by
    TensorFlow, and the manager's state file is replaced atomically. So
    whenever the process is killed, the history holds every checkpointed
    epoch, and the newest checkpoint is loadable. Rows past the resumed step
    (an epoch that ran after the last checkpoint) are dropped when training
    resumes.

    Keras calls the callbacks of an epoch end in list order: the run lists
    this one last, so that what the others write at an epoch end (TensorBoard)
    is on disk before the checkpoint.

    Args:
        manager: ``tf.train.CheckpointManager``.
        history_path: the run's ``history.json``.
        step_variable: the optimizer's step counter.
        weights: the model's ``MovingAverages``.
        quality: a ``QualityEvaluation``, or None.
    """

    def __init__(self, manager, history_path, step_variable, weights, quality=None):
        super().__init__()
        self.manager = manager
        self.path = Path(history_path)
        self.step_variable = step_variable
        self.weights = weights
        self.quality = quality
        self.logs = {}

    def on_train_begin(self, logs=None):
        history = load_history(self.path)
        keep = sum(1 for s in history.get("step", []) if s <= int(self.step_variable.numpy()))
        self.history = {name: values[:keep] for name, values in history.items()}

    def on_train_batch_end(self, batch, logs=None):
        self.logs = logs or {}
        if self.quality is not None:
            self.quality.after_step(self.model, int(self.step_variable.numpy()))

    def on_epoch_end(self, epoch, logs=None):
        self.weights.keep_trained()
        if self.quality is not None and logs is not None:
            logs.update(self.quality.epoch_figures())
        if not self.model.stop_training:
            self.save(logs)

    def save(self, logs=None):
        """Write the history row of the current step, then a checkpoint; return the checkpoint's path.

        Args:
            logs: the row's values (an epoch's logs), or None for the last step's (e.g. on a signal).
        """
        step = int(self.step_variable.numpy())
        if (self.history.get("step") or [None])[-1] != step:
            row = {"step": step, **{k: as_float(v) for k, v in (self.logs if logs is None else logs).items()}}
            # Columns stay aligned with "step" when a row lacks a key or brings a new one: NaN fills in.
            rows = len(self.history.get("step", []))
            for name in row.keys() - self.history.keys():
                self.history[name] = [math.nan] * rows
            for name, values in self.history.items():
                values.append(row.get(name, math.nan))
            write_atomically(self.path, json.dumps(self.history, indent=1))
        latest = self.manager.latest_checkpoint
        if latest and latest.endswith(f"-{step}"):  # saved at this step's epoch end already
            return latest
        return self.manager.save(checkpoint_number=step)


class DivergenceWatchdog(keras.callbacks.Callback):
    """Stop training on a non-finite tracker or an energy gap beyond a bound.

    Checks every tracker of the model after every step (the values shown by
    the progress bar: running means over the epoch, so a NaN shows at once),
    by the names the model's trackers (``model.metrics``) carry, so that a
    renamed or new tracker is checked too; the gap is the model's
    ``energy_diff_tracker``. On a problem it stops training and keeps the
    message in ``self.diverged``.

    Args:
        max_energy_gap: bound on ``|energy_diff|``, or None.
    """

    def __init__(self, max_energy_gap=None):
        super().__init__()
        self.max_energy_gap = max_energy_gap
        self.diverged = None

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        step = int(self.model.optimizer.iterations.numpy())
        # Every tracker reports each step (train_step returns them all): a missing one is a bug, not a skip.
        values = {tracker.name: as_float(logs[tracker.name]) for tracker in self.model.metrics}
        for name, value in values.items():
            if not math.isfinite(value):
                self._stop(f"training diverged at step {step}: {name} is {value}")
                return
        gap_tracker = getattr(self.model, "energy_diff_tracker", None)  # HatEBM's; an Autoencoder has none
        gap = None if gap_tracker is None else values[gap_tracker.name]
        if self.max_energy_gap is not None and gap is not None and abs(gap) > self.max_energy_gap:
            self._stop(
                f"training diverged at step {step}: |{gap_tracker.name}| = {abs(gap):.4g} exceeds "
                f"max_energy_gap = {self.max_energy_gap:.4g}"
            )

    def _stop(self, message):
        self.diverged = message
        self.model.stop_training = True


class DriftAtClip(keras.callbacks.Callback):
    """Warn once when the sampler's residual drift sits at its clip for ``patience`` steps in a row.

    ``grad_norm_res`` is the mean length of a chain's residual drift steps,
    which ``max_residual_norm`` clips. At the clip, every step has the same
    length whatever the energy's scale, so the sampler no longer pulls the
    energy back (a steeper energy moves the samples no further) and maximum
    likelihood can steepen it without bound: every runaway we measured
    started so. The logs hold the epoch's running mean; the step's own value
    is recovered from two consecutive means.

    Args:
        clip: the training sampler's ``max_residual_norm`` (None: no clip, no warning).
        settings: what to change, for the message (e.g. ``"sampler.max_residual_norm, ..."``).
        fraction: a step is "at the clip" when its drift is at least this share of it.
        patience: consecutive steps at the clip before the warning.
    """

    TRACKER = "grad_norm_res"

    def __init__(self, clip, settings, fraction=0.95, patience=100):
        super().__init__()
        self.clip, self.settings, self.fraction, self.patience = clip, settings, fraction, patience
        self.warned, self._run, self._previous = None, 0, 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._previous = 0.0

    def on_train_batch_end(self, batch, logs=None):
        if self.clip is None or self.warned or self.TRACKER not in (logs or {}):
            return
        mean = as_float(logs[self.TRACKER])
        drift = (batch + 1) * mean - batch * self._previous  # this step's value, from the running means
        self._previous = mean
        self._run = self._run + 1 if drift >= self.fraction * self.clip else 0
        if self._run >= self.patience:
            step = int(self.model.optimizer.iterations.numpy())
            self.warned = (
                f"warning: at step {step} the sampler's residual drift (grad_norm_res) has sat at its clip "
                f"(max_residual_norm = {self.clip:g}) for {self.patience} steps: the energy steepens unchecked, "
                f"which precedes a runaway energy gap; change {self.settings}"
            )
            log.warning("%s", self.warned)
            print(f"\n{self.warned}", flush=True)  # on the progress line's stream, between its updates


class StepsRunProgbar(keras.callbacks.ProgbarLogger):
    """Keras's progress bar, whose epoch line counts the steps that ran: a stopped epoch ends at ``4/250``.

    Keras's own ends every epoch at its target (``250/250``), even one that
    the watchdog or a signal stopped after 4 steps.
    """

    def _finalize_progbar(self, logs):
        self._maybe_init_progbar()
        self.progbar.update(self.seen, list((logs or {}).items()), finalize=True)


class TensorBoardAtSteps(keras.callbacks.TensorBoard):
    """Keras's TensorBoard callback with every summary at the optimizer's step, on disk before each checkpoint.

    Keras counts batches from 0 in every ``fit`` call and logs the epoch
    figures at the epoch number; a run trains in several ``fit`` calls
    (resumes, rollbacks, a shorter first epoch) and ``steps_per_epoch`` may
    change on resume, so those steps would repeat and mean different things.
    Here ``batch_*`` and ``epoch_*`` are at the step they were logged at,
    like the other callbacks' summaries, which is what
    ``tensorboard_log.drop_events_after`` cuts at. The writers are flushed at
    every epoch end, before the checkpoint (``EpochRecords`` comes after this
    callback), so that a kill loses no summary of a checkpointed step.
    """

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        # Keras's batch counter (private): it is the step of each batch's summaries, and starts here at 0.
        self._global_train_batch = int(self.model.optimizer.iterations.numpy())

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(int(self.model.optimizer.iterations.numpy()), logs)
        for writer in self._writers.values():
            writer.flush()


class SampleGrid(keras.callbacks.Callback):
    """Write a grid of samples to TensorBoard every ``every`` steps (seeded, so grids are comparable)."""

    def __init__(self, log_dir, every, num=36, seed=1234):
        super().__init__()
        self.writer = tf.summary.create_file_writer(str(log_dir))
        self.every, self.num, self.seed = every, num, seed

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        if step % self.every == 0:
            samples = self.model.sample(self.num, seed=self.seed).numpy()
            if np.isnan(samples).any():
                # A diverged step: no grid. The divergence watchdog (DivergenceWatchdog) names it and acts.
                log.warning("SampleGrid: the samples at step %d hold NaN; no grid written", step)
                return
            grid = image_grid(model_range_to_uint8(samples))
            with self.writer.as_default():
                tf.summary.image("samples", grid[None], step=step)
            self.writer.flush()


class QualityEvaluation:
    """Every ``every`` steps, score samples with the quality report, for the history row of their epoch.

    The samples are drawn as the end of the run draws its own (the
    evaluation sampler and seed, the weights' moving averages) and pass
    through uint8 as they do, so an evaluation at the last step scores the
    first ``num`` of the run's samples. ``EpochRecords`` calls ``after_step``
    after every step and takes ``epoch_figures`` (``quality_fd``,
    ``quality_kid``, ``quality_copying`` and, for labelled data sets,
    ``quality_confidence``) at every epoch end. With ``log_dir`` the figures
    are also TensorBoard scalars (``quality/*``) at their step.

    Args:
        reference: the ``QualityReference`` of the run's data.
        every: steps between evaluations.
        num: images per evaluation (≥ 2).
        seed: sampling seed.
        batch_size: chains run at once.
        sampler: ``LangevinConfig`` of the evaluation, or None for the model's.
        log_dir: TensorBoard directory, or None.
    """

    FIGURES = (
        ("quality_fd", "frechet_distance"),
        ("quality_kid", "kid"),
        ("quality_copying", "copying_share"),
        ("quality_confidence", "mean_confidence"),
    )

    def __init__(self, reference, every, num, seed, batch_size, sampler=None, log_dir=None):
        # The networks the report scores with are read or trained now, before `fit` starts, rather than inside it.
        self.reference = reference.prepare()
        self.every, self.num, self.seed, self.batch_size, self.sampler = every, num, seed, batch_size, sampler
        self.writer = tf.summary.create_file_writer(str(log_dir)) if log_dir is not None else None
        self.figures = {}

    def after_step(self, model, step):
        """Evaluate ``model`` if ``step`` is an evaluation step."""
        if step % self.every:
            return
        with MovingAverages(model).applied():
            samples = model.sample(self.num, seed=self.seed, batch_size=self.batch_size, config=self.sampler)
        samples = samples.numpy()
        if np.isnan(samples).any():
            # A diverged step: NaN figures; the divergence watchdog (DivergenceWatchdog) names it and acts.
            self.figures = {key: math.nan for key, _ in self.FIGURES}
        else:
            row = score(uint8_to_model_range(model_range_to_uint8(samples)).numpy(), self.reference)
            self.figures = {key: row.get(name, math.nan) for key, name in self.FIGURES}
        if self.writer is not None:
            with self.writer.as_default():
                for key, value in self.figures.items():
                    tf.summary.scalar(key.replace("quality_", "quality/"), value, step=step)
            self.writer.flush()

    def epoch_figures(self):
        """The figures of the epoch that ends (NaN where it had no evaluation); the next epoch starts without any."""
        figures = {key: self.figures.get(key, math.nan) for key, _ in self.FIGURES}
        self.figures = {}
        return figures


class StopOnSignal(keras.callbacks.Callback):
    """Turn SIGINT and SIGTERM into a stop after the current step, while installed (a context manager).

    The first signal is recorded in ``signum`` and training stops at the end
    of the step in progress, with the model in a consistent state to
    checkpoint. A second signal falls back to the previous handler (Ctrl-C
    twice stops at once). Signals that were ignored stay ignored, and
    nothing is installed outside the main thread.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        super().__init__()
        self.signum = None
        self._previous = {}
        self._training = None  # the model while fit runs: a signal then stops it after the step in progress

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                previous = signal.getsignal(signum)
                if previous is not signal.SIG_IGN:
                    self._previous[signum] = previous
                    signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info):
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}

    def _handle(self, signum, frame):
        if self.signum is None:
            self.signum = signum
            if self._training is not None:
                self._training.stop_training = True
            print(
                f"\n{signal.Signals(signum).name}: stopping after this step and writing a checkpoint "
                "(send it again to stop at once)",
                file=sys.stderr,
                flush=True,
            )
            return
        previous = self._previous.get(signum)
        if callable(previous):
            previous(signum, frame)
        else:  # SIG_DFL: die of the signal, as without this handler
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    def on_train_begin(self, logs=None):
        self._training = self.model

    def on_train_end(self, logs=None):
        self._training = None

    def on_train_batch_end(self, batch, logs=None):
        # Keras clears stop_training when fit starts: a signal received before then stops it here.
        if self.signum is not None:
            self.model.stop_training = True


def load_history(path):
    """The ``history.json`` of a run directory, or ``{}``."""
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else {}
