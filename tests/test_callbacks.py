"""Callbacks of the training job (``hat_ebm_tf.training.callbacks``): the divergence watchdog, the quality figures."""

import json

import numpy as np
import pytest

from hat_ebm_tf.config import parse_config
from hat_ebm_tf.training.train import run_training
from tests.helpers import tiny_digits_config


def test_injected_nan_trips_the_watchdog_and_the_last_checkpoint_loads(tmp_path):
    import tensorflow as tf

    from hat_ebm_tf.errors import TrainingDiverged

    # From step 2 on the learning rate is 1e30: the weights overflow, the energies become NaN.
    config = parse_config(tiny_digits_config(steps=6, steps_per_epoch=2, hat_learning_rate=[[1e-4, 0], [1e30, 2]]))
    with pytest.raises(TrainingDiverged, match=r"training diverged at step [3-6]: \w+ is (nan|inf)") as info:
        run_training(config, tmp_path / "run", verbose=0)
    assert "ckpt-2" in str(info.value)
    latest = tf.train.latest_checkpoint(tmp_path / "run" / "checkpoints")
    assert latest.endswith("ckpt-2")
    names = [name for name, shape in tf.train.list_variables(latest) if shape and "OBJECT_GRAPH" not in name]
    values = [tf.train.load_variable(latest, name) for name in names]
    assert values and all(np.all(np.isfinite(v)) for v in values)


def test_the_watchdog_checks_the_trackers_by_the_names_the_model_gives_them():
    from hat_ebm_tf.train_step import Tracker
    from hat_ebm_tf.training.callbacks import DivergenceWatchdog
    from tests.helpers import tiny_model

    model = tiny_model()
    # Renamed trackers: a list of names in the watchdog would stop checking them.
    model.hat_grad_norm_tracker, model.energy_diff_tracker = Tracker(name="renamed_norm"), Tracker(name="gap")
    healthy = {tracker.name: 0.5 for tracker in model.metrics}
    assert {"renamed_norm", "gap"} <= set(healthy)
    for logs, expected in [
        ({**healthy, "renamed_norm": float("nan")}, "training diverged at step 0: renamed_norm is nan"),
        ({**healthy, "gap": -3.0}, "training diverged at step 0: |gap| = 3 exceeds max_energy_gap = 1"),
        (healthy, None),
    ]:
        watchdog = DivergenceWatchdog(max_energy_gap=1.0)
        watchdog.set_model(model)
        watchdog.on_train_batch_end(0, logs)
        assert watchdog.diverged == expected


def test_quality_is_recorded_during_training(tmp_path, digits_reference):
    import math

    import tensorflow as tf

    values = tiny_digits_config(steps=4, steps_per_epoch=1, tensorboard_every=1)
    values["evaluation"] = {"num_samples": 4, "batch_size": 4, "every": 2, "quality_samples": 4}
    summary = run_training(parse_config(values), tmp_path / "run", verbose=0)
    run = tmp_path / "run"
    history = json.loads((run / "history.json").read_text())
    assert history["step"] == [1, 2, 3, 4]
    for key in ("quality_confidence", "quality_fd", "quality_kid", "quality_copying"):
        assert [math.isnan(v) for v in history[key]] == [True, False, True, False], key
    assert 0.1 <= history["quality_confidence"][1] <= 1.0 and history["quality_fd"][1] > 0.0
    # At the last step, the evaluation draws what the end of the run draws: the same figures as quality.json.
    quality = json.loads((run / "quality.json").read_text())
    assert {"samples", "floor", "baseline", "measure"} <= set(quality) and quality == summary["quality"]
    assert history["quality_fd"][3] == pytest.approx(quality["samples"]["frechet_distance"], rel=1e-6)
    assert history["quality_confidence"][3] == pytest.approx(quality["samples"]["mean_confidence"], rel=1e-6)
    assert history["quality_copying"][3] == quality["samples"]["copying_share"]
    assert (run / "training_curve.png").is_file()
    scalars = {}
    for path in (run / "tensorboard").rglob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.tag.startswith("quality/"):
                    scalars.setdefault(value.tag, []).append((event.step, float(tf.make_ndarray(value.tensor))))
    assert sorted(scalars) == ["quality/confidence", "quality/copying", "quality/fd", "quality/kid"]
    assert [step for step, _ in scalars["quality/fd"]] == [2, 4]
    assert scalars["quality/fd"][1][1] == pytest.approx(history["quality_fd"][3], rel=1e-5)


def test_nan_samples_give_nan_quality_figures_and_leave_the_divergence_to_the_watchdog(digits_reference):
    import math

    import keras

    from hat_ebm_tf.training.callbacks import QualityEvaluation
    from tests.helpers import tiny_model

    model = tiny_model()
    # No moving averages, which would swap the finite weights back in for the evaluation.
    model.compile(hat_optimizer=keras.optimizers.Adam(1e-3), generator_optimizer=keras.optimizers.Adam(1e-3))
    kernel = model.hat.weights[0]
    kernel.assign(np.full(kernel.shape, np.nan, np.float32))  # NaN energies, so NaN Langevin samples
    evaluation = QualityEvaluation(digits_reference, every=1, num=4, seed=0, batch_size=4)
    evaluation.after_step(model, 0)  # step 0: an evaluation step
    figures = evaluation.epoch_figures()
    assert set(figures) == {"quality_confidence", "quality_fd", "quality_kid", "quality_copying"}
    assert all(math.isnan(value) for value in figures.values())


def test_drift_at_its_clip_for_a_stretch_warns_once(caplog, capsys):
    from hat_ebm_tf.training.callbacks import DriftAtClip
    from tests.helpers import tiny_model

    warning = DriftAtClip(clip=1.0, settings="training.drift_weight", patience=5)
    warning.set_model(tiny_model())
    warning.on_epoch_begin(0)
    # Running means as Keras logs them: steps at 0.5, then at the clip; one step below it restarts the count.
    steps = [0.5, 0.5, 1.0, 1.0, 1.0, 1.0, 0.2, 1.0, 1.0, 1.0, 1.0]
    with caplog.at_level("WARNING", logger="hat_ebm_tf.training"):
        for batch, _ in enumerate(steps):
            warning.on_train_batch_end(batch, {"grad_norm_res": float(np.mean(steps[: batch + 1]))})
        assert warning.warned is None  # 4 in a row, then 4 again: never 5
        for batch in range(len(steps), len(steps) + 3):
            steps.append(1.0)
            warning.on_train_batch_end(batch, {"grad_norm_res": float(np.mean(steps))})
    assert "residual drift (grad_norm_res) has sat at its clip (max_residual_norm = 1) for 5 steps" in warning.warned
    assert "change training.drift_weight" in warning.warned
    assert [r.message for r in caplog.records].count(warning.warned) == 1 and warning.warned in capsys.readouterr().out
    unclipped = DriftAtClip(clip=None, settings="")
    unclipped.set_model(tiny_model())
    unclipped.on_train_batch_end(0, {"grad_norm_res": 5.0})
    assert unclipped.warned is None


def test_an_epoch_stopped_early_shows_the_steps_that_ran(capsys):
    import keras

    from hat_ebm_tf.data import array_dataset
    from hat_ebm_tf.training.callbacks import StepsRunProgbar
    from tests.helpers import tiny_images, tiny_model

    class StopAfterTwo(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            self.model.stop_training = batch == 1

    model = tiny_model()
    model.fit(
        array_dataset(tiny_images(8), 4), steps_per_epoch=5, callbacks=[StopAfterTwo(), StepsRunProgbar()], verbose=2
    )
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("2/5 - "), line
