"""The TensorBoard logs hold each training step once, across kills, resumes and rollbacks."""

import signal

import numpy as np
import pytest
import tensorflow as tf
import yaml
from tensorboard.backend.event_processing import event_accumulator

from hat_ebm_tf.config import parse_config
from hat_ebm_tf.training.tensorboard_log import drop_events_after
from hat_ebm_tf.training.train import run_training
from tests.helpers import array_config, tiny_digits_config, train_in_process, train_in_subprocess


def logged(board):
    """``{(directory, tag): {step: [values]}}`` of every summary under ``board``, as TensorBoard reads them.

    Each directory holding event files is a TensorBoard run, read with the
    default ``purge_orphaned_data=True``; every value is kept (no sampling).
    """
    found = {}
    for directory in sorted({path.parent for path in board.rglob("*tfevents*")}):
        reader = event_accumulator.EventAccumulator(str(directory), size_guidance={event_accumulator.TENSORS: 0})
        reader.Reload()
        for tag in reader.Tags()[event_accumulator.TENSORS]:
            steps = found.setdefault((directory.relative_to(board).as_posix(), tag), {})
            for event in reader.Tensors(tag):
                steps.setdefault(event.step, []).append(tf.make_ndarray(event.tensor_proto))
    return found


def assert_each_step_once(found):
    for key, steps in found.items():
        assert all(len(values) == 1 for values in steps.values()), f"{key}: steps logged twice in {sorted(steps)}"


def test_a_run_killed_between_checkpoints_resumes_with_each_step_logged_once(tmp_path):
    """SIGKILL after step 3 (the checkpoint is step 2); the resumed run logs steps 3 to 6 once, keeps steps 1 and 2."""
    values = array_config(tmp_path, steps=6, steps_per_epoch=2, tensorboard_every=1)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(values))
    killed = train_in_subprocess(tmp_path, "run", hook=("after-step", 3, "SIGKILL"))
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    board = tmp_path / "run" / "tensorboard"
    before = logged(board)
    assert max(before[(".", "samples")]) == 3  # the lost step reached the logs: there is something to drop
    train_in_process(tmp_path, "run")  # the resume
    after = logged(board)
    assert_each_step_once(after)
    tags = {tag.partition("_")[0] for _, tag in after}
    assert {"batch", "epoch", "samples"} <= tags
    # Every summary is at the optimizer's step: each batch, each epoch end (where checkpoints are), each grid.
    expected = {"batch": [1, 2, 3, 4, 5, 6], "epoch": [2, 4, 6], "samples": [1, 2, 3, 4, 5, 6]}
    for (directory, tag), steps in after.items():
        assert sorted(steps) == expected[tag.partition("_")[0]], (directory, tag)
    # The checkpointed steps keep the interrupted run's values (flushed before the checkpoint was written).
    for key, steps in before.items():
        kept = {step: values for step, values in steps.items() if step <= 2}
        assert kept, key
        for step, values in kept.items():
            np.testing.assert_array_equal(after[key][step][0], values[0], err_msg=f"{key} at step {step}")


def test_a_rollback_drops_the_diverged_steps_from_tensorboard(tmp_path, caplog):
    from hat_ebm_tf.errors import TrainingDiverged

    # From step 2 on the learning rate is 1e30: both tries diverge after the checkpoint of step 2.
    values = tiny_digits_config(steps=6, steps_per_epoch=2, hat_learning_rate=[[1e-4, 0], [1e30, 2]])
    values["training"].update(tensorboard_every=1, on_divergence="rollback", max_rollbacks=1)
    with caplog.at_level("WARNING", logger="hat_ebm_tf.training"), pytest.raises(TrainingDiverged):
        run_training(parse_config(values), tmp_path / "run", verbose=0)
    found = logged(tmp_path / "run" / "tensorboard")
    assert_each_step_once(found)
    batch = [steps for (_, tag), steps in found.items() if tag.startswith("batch_")]
    assert batch and all(sorted(steps)[:3] == [1, 2, 3] for steps in batch)
    # Each try diverges at step 4, whose samples are NaN: no grid of them (once a grid of garbage pixels), a warning.
    assert sorted(found[(".", "samples")]) == [1, 2, 3]
    assert caplog.messages.count("SampleGrid: the samples at step 4 hold NaN; no grid written") == 2


def _write(directory, steps):
    """One event file in ``directory`` with the scalar ``x`` = step at each of ``steps``; its path."""
    before = set(directory.glob("*tfevents*"))
    writer = tf.summary.create_file_writer(str(directory))
    with writer.as_default():
        for step in steps:
            tf.summary.scalar("x", float(step), step=step)
    writer.close()
    (path,) = set(directory.glob("*tfevents*")) - before
    return path


def test_drop_events_after_keeps_the_steps_up_to_the_checkpoint(tmp_path):
    board = tmp_path / "tensorboard"
    older = _write(board, [1, 2])  # a run that stopped at its checkpoint of step 2
    newer = _write(board, [3, 4, 5])  # its resume, killed after step 5
    torn = _write(board / "train", [1, 2, 3, 4, 5])
    torn.write_bytes(torn.read_bytes()[:-5])  # killed while writing step 5's record
    untouched = older.read_bytes()

    assert drop_events_after(board, 3) == 3  # steps 4 and 5 of `newer`, 4 of `torn`
    assert older.read_bytes() == untouched  # nothing past step 3: left as it is
    assert sorted(p.name for p in board.rglob("*")) == sorted(["train", older.name, newer.name, torn.name])
    found = logged(board)
    assert set(found) == {(".", "x"), ("train", "x")}
    for steps in found.values():
        assert {step: [float(v) for v in values] for step, values in steps.items()} == {1: [1.0], 2: [2.0], 3: [3.0]}
    # The file_version header stays first, so TensorBoard still reads the files as version 2 event files.
    assert next(iter(tf.compat.v1.train.summary_iterator(str(newer)))).file_version == "brain.Event:2"

    assert drop_events_after(board, 3) == 0 and older.read_bytes() == untouched
    assert drop_events_after(tmp_path / "absent", 0) == 0
