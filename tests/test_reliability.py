"""Bad input and interruptions end in a named error with a documented exit code, and nothing is lost.

Here: run directories that cannot take a run, and resumes. The exit code of
each failure class of ``hat_ebm_tf.errors`` is in tests/test_main.py, output
paths in tests/test_outputs.py, exports in tests/test_savedmodel.py, config
values in tests/test_config.py, data sources in tests/test_data.py, and the
killed or interrupted training runs in tests/test_train.py.
"""

import dataclasses
import fcntl
import gc
import json
import logging
import re

import keras
import numpy as np
import pytest
import tensorflow as tf
import yaml

from hat_ebm_tf.config import load_config, parse_config
from hat_ebm_tf.errors import ConfigError, DataError, RunDirError
from hat_ebm_tf.training.train import run_training
from tests.helpers import array_config, history_steps, latest_checkpoint, train_in_process


# ----------------------------------------------------------- run directories
def _files(root):
    return {p.relative_to(root): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize("case", ["file", "below_a_file", "empty_config", "import", "other_config", "locked"])
def test_a_run_directory_that_cannot_take_the_run_is_refused_untouched(case, tmp_path):
    config = parse_config(array_config(tmp_path, steps=2, steps_per_epoch=2))
    run = tmp_path / "run"
    if case == "file":
        run.write_text("notes")
        match = "is not a directory"
    elif case == "below_a_file":
        run = tmp_path / "digits.npz" / "run"
        match = r"is not a directory .*digits.npz' is a file"
    elif case == "empty_config":
        run.mkdir()
        (run / "config.yaml").write_text("")
        match = r"config.yaml does not hold a run's config .*got NoneType"
    elif case == "import":  # e.g. the output of `hat-ebm import-reference`
        run.mkdir()
        (run / "model.keras").write_bytes(b"a model")
        match = "holds model.keras but no config.yaml"
    elif case == "other_config":  # a run that checkpointed: its training would be lost
        (run / "checkpoints").mkdir(parents=True)
        (run / "checkpoints" / "ckpt-2.index").write_bytes(b"")
        (run / "config.yaml").write_text(yaml.safe_dump(dataclasses.replace(config, seed=5).to_dict()))
        match = r"different config \(it differs in seed\)"
    else:
        run.mkdir()
        lock = (run / ".lock").open("a")
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process training there
        match = "another process is training in"
    before = _files(tmp_path)
    with pytest.raises(RunDirError, match=match):
        run_training(config, run, verbose=0)
    assert _files(tmp_path) == before


def test_a_failed_start_writes_nothing(tmp_path):
    values = array_config(tmp_path, steps=2, steps_per_epoch=2)
    values["mode"] = "refine"  # with no generator_checkpoint: the model cannot be built
    values["sampler"].update(update_latents=True, latent_step_size=0.01)
    with pytest.raises(ConfigError, match="generator_checkpoint is required"):
        run_training(parse_config(values), tmp_path / "run", verbose=0)
    assert not (tmp_path / "run").exists()

    np.savez(tmp_path / "one.npz", images=np.zeros((1, 16, 16, 1), np.uint8))
    values = array_config(tmp_path, steps=2, steps_per_epoch=2)
    values["data"]["source"] = str(tmp_path / "one.npz")
    values["training"]["mixed_precision"] = "mixed_bfloat16"  # the run's policy, not left to its caller
    with pytest.raises(DataError, match="holds 1 images; a batch needs 4"):  # the Python API's rule too
        run_training(parse_config(values), tmp_path / "run", verbose=0)
    assert not (tmp_path / "run").exists()
    assert keras.mixed_precision.global_policy().name == "float32"


def test_resume_skips_a_damaged_checkpoint_and_stale_temporaries(tmp_path, caplog):
    config = parse_config(array_config(tmp_path, steps=4, steps_per_epoch=2))
    run_training(config, tmp_path / "run", verbose=0)
    checkpoints = tmp_path / "run" / "checkpoints"
    data = checkpoints / "ckpt-4.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])  # e.g. a full disk
    (checkpoints / "ckpt-6_temp").mkdir()  # the temporary directory of a writer killed mid-save
    (checkpoints / "ckpt-6_temp" / "part-00000-of-00001.index").write_bytes(b"partial")

    longer = dataclasses.replace(config, training=dataclasses.replace(config.training, steps=6))
    with caplog.at_level("WARNING", logger="hat_ebm_tf.training"):
        assert run_training(longer, tmp_path / "run", verbose=0)["steps"] == 6
    warnings = " | ".join(r.getMessage() for r in caplog.records)
    assert re.search(r"checkpoint \S+ckpt-4 is damaged", warnings) and re.search(r"resumed from \S+ckpt-2", warnings)
    assert not (checkpoints / "ckpt-6_temp").exists()
    assert history_steps(tmp_path / "run") == [2, 4, 6]


def test_steps_are_exact_and_a_larger_steps_extends_the_run(tmp_path, capsys):
    # 3 steps with 4 an epoch: one shorter epoch, not a whole one.
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(array_config(tmp_path, steps=3, steps_per_epoch=4)))
    train_in_process(tmp_path, "run")
    out = capsys.readouterr().out
    summary = out[out.rindex("\n{") : out.rindex("\n}") + 2]
    assert json.loads(summary)["steps"] == 3
    assert history_steps(tmp_path / "run") == [3]
    # The same run, extended by the --steps flag: the epoch is completed, then 1 more.
    train_in_process(tmp_path, "run", "--steps", 5)
    assert history_steps(tmp_path / "run") == [3, 4, 5] and latest_checkpoint(tmp_path / "run") == "ckpt-5"


def test_a_run_that_failed_before_its_first_checkpoint_leaves_a_directory_a_corrected_config_can_use(tmp_path):
    values = array_config(tmp_path, steps=2, steps_per_epoch=2)
    values["training"]["max_energy_gap"] = 1e-12  # the watchdog stops the first epoch, before its checkpoint
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(values))
    with pytest.raises(SystemExit) as info:
        train_in_process(tmp_path, "run")
    assert info.value.code == 5 and (tmp_path / "run" / "config.yaml").is_file()
    assert not list((tmp_path / "run").glob("checkpoints/ckpt-*"))

    values["training"]["max_energy_gap"] = None  # the corrected config, the same command
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(values))
    train_in_process(tmp_path, "run")
    assert history_steps(tmp_path / "run") == [2] and latest_checkpoint(tmp_path / "run") == "ckpt-2"
    assert load_config(tmp_path / "run" / "config.yaml") == parse_config(values)


def test_a_hand_edited_config_that_no_longer_fits_the_checkpoints_is_named(tmp_path):
    run = tmp_path / "run"
    run_training(parse_config(array_config(tmp_path, steps=2, steps_per_epoch=2)), run, verbose=0)
    values = yaml.safe_load((run / "config.yaml").read_text())
    values["networks"]["hat_width"] = 16  # was 8
    (run / "config.yaml").write_text(yaml.safe_dump(values))
    before = _files(tmp_path)
    # TensorFlow's warnings of a failed restore's unrestored values, which it logs when their objects are freed.
    warnings = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = warnings.append
    tf.get_logger().addHandler(handler)
    try:
        with pytest.raises(RunDirError, match=r"run's config no longer matches its checkpoints \(was config.yaml"):
            run_training(load_config(run / "config.yaml"), run, verbose=0)
        gc.collect()
    finally:
        tf.get_logger().removeHandler(handler)
    assert not [record.getMessage() for record in warnings if "unrestored" in record.getMessage()]
    assert _files(tmp_path) == before  # nothing written
