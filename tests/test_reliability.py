"""Bad input and interruptions end in a named error with a documented exit code, and nothing is lost.

One test or more per failure class of ``hat_ebm_tf.errors``. Config values are
in tests/test_config.py, data sources in tests/test_data.py, and the killed or
interrupted training runs in tests/test_train.py.
"""

import dataclasses
import fcntl
import json
import re
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
import yaml

from hat_ebm_tf.cli.main import describe_failure, main
from hat_ebm_tf.errors import (
    ConfigError,
    DataError,
    LimitError,
    ModelFileError,
    RunDirError,
    TrainingDiverged,
    TrainingInterrupted,
)
from hat_ebm_tf.serving.savedmodel import MAX_VERSION, MODELS_CONFIG, export_model
from hat_ebm_tf.training.config import parse_config
from hat_ebm_tf.training.train import run_training
from tests.helpers import tiny_model
from tests.test_train import SIGNAL_HOOK, _history_steps, _latest_checkpoint, _train, array_config

README = SIGNAL_HOOK.parents[1] / "README.md"


def cli_fails(capsys, *argv, code, match):
    """``hat-ebm ARGV`` in this process must exit with ``code``, its last stderr line naming the problem."""
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in argv])
    assert info.value.code == code, str(info.value)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"hat-ebm {argv[0]}: ") and re.search(match, last), last


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """``tiny.keras`` (an untrained HatEBM) and ``other.keras`` (a Keras model of another class)."""
    root = tmp_path_factory.mktemp("models")
    tiny_model().save(root / "tiny.keras")
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)]).save(root / "other.keras")
    return root


# ------------------------------------------------------------------ exit codes
@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ConfigError("x"), 2),
        (LimitError("x"), 2),
        (DataError("x"), 3),
        (ModelFileError("x"), 3),
        (RunDirError("x"), 4),
        (TrainingDiverged("x"), 5),
        (TrainingInterrupted("x", signal.SIGINT), 130),
        (TrainingInterrupted("x", signal.SIGTERM), 143),
        (KeyboardInterrupt(), 130),
        (MemoryError(), 1),
        (tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor"), 1),
        (PermissionError(13, "Permission denied", "out.npz"), 1),
        (ValueError("x"), 1),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_each_failure_class_has_a_documented_exit_code(error, code):
    got, kind, message = describe_failure(error)
    assert got == code and kind and message
    section = README.read_text().split("\n## Exit codes\n")[1].split("\n## ")[0]
    assert re.search(rf"^\| {code} \|", section, re.MULTILINE), f"exit code {code} is not in the README's table"


def test_a_bug_keeps_its_traceback():
    assert describe_failure(TypeError("a bug")) is None


def test_command_line_errors_are_one_line_with_their_codes(models, tmp_path, capsys):
    (tmp_path / "bad.yaml").write_text("training: {steps: true}\n")
    cli_fails(capsys, "train", "--config", tmp_path / "bad.yaml", "--run-dir", tmp_path / "r", code=2, match="steps")
    (tmp_path / "big.yaml").write_text("training: {bank_size: 1000000000000}\n")
    cli_fails(
        capsys, "train", "--config", tmp_path / "big.yaml", "--run-dir", tmp_path / "r", code=2,
        match=r"persistent banks .* exceeds the limit of 16 GB; .* raise limits.memory_gb",
    )  # fmt: skip
    assert not (tmp_path / "r").exists()
    cli_fails(capsys, "sample", models / "other.keras", code=3, match="holds a Sequential, not a HatEBM")
    cli_fails(capsys, "sample", tmp_path / "nowhere", code=3, match="no trained model at")
    cli_fails(
        capsys, "export", models / "other.keras", "--base-path", tmp_path / "s", "--name", "m", code=3,
        match="not a HatEBM",
    )  # fmt: skip
    (tmp_path / "file").write_text("")
    cli_fails(
        capsys, "train", "--config", "digits", "--run-dir", tmp_path / "file" / "run", code=4,
        match=r"run directory .*file/run' is not a directory",
    )  # fmt: skip


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
    elif case == "other_config":
        run.mkdir()
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
    with pytest.raises(DataError, match="holds 1 images; a batch needs 4"):  # the Python API's rule too
        run_training(parse_config(values), tmp_path / "run", verbose=0)
    assert not (tmp_path / "run").exists()


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
    assert _history_steps(tmp_path / "run") == [2, 4, 6]


def test_steps_are_exact_and_a_larger_steps_extends_the_run(tmp_path):
    # 3 steps with 4 an epoch: one shorter epoch, not a whole one.
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(array_config(tmp_path, steps=3, steps_per_epoch=4)))
    first = _train(tmp_path, "run")
    assert first.returncode == 0, first.stderr[-3000:]
    summary = first.stdout[first.stdout.rindex("\n{") : first.stdout.rindex("\n}") + 2]
    assert json.loads(summary)["steps"] == 3
    assert _history_steps(tmp_path / "run") == [3]
    second = _train(tmp_path, "run", "--steps", 5)  # the same run, extended: the epoch is completed, then 1 more
    assert second.returncode == 0, second.stderr[-3000:]
    assert _history_steps(tmp_path / "run") == [3, 4, 5] and _latest_checkpoint(tmp_path / "run") == "ckpt-5"


# -------------------------------------------------------------------- outputs
def test_sample_writes_exactly_the_path_it_prints(models, tmp_path, capsys):
    sample = ("sample", models / "tiny.keras", "--num", 2, "--steps", 1)
    main([str(a) for a in (*sample, "--out", tmp_path / "foo")])
    assert f"to {tmp_path / 'foo.npz'}" in capsys.readouterr().out
    assert np.load(tmp_path / "foo.npz")["images"].shape == (2, 16, 16, 1) and not (tmp_path / "foo").exists()
    (tmp_path / "dir").mkdir()
    main([str(a) for a in (*sample, "--out", tmp_path / "dir")])
    assert f"to {tmp_path / 'dir' / 'samples.npz'}" in capsys.readouterr().out
    cli_fails(capsys, *sample, "--out", tmp_path / "foo.npz", code=4, match="the file exists; pass --overwrite")
    main([str(a) for a in (*sample, "--out", tmp_path / "foo.npz", "--overwrite")])
    cli_fails(capsys, *sample, "--out", tmp_path / "foo.npz" / "x.npz", code=4, match="no directory")
    cli_fails(
        capsys, "sample", models / "tiny.keras", "--num", 2_000_000_000, code=2,
        match=r"estimated memory 2\.56e\+03 GB .* exceeds the limit of 4 GB; .* raise --max-memory-gb",
    )  # fmt: skip


def test_outputs_are_checked_before_any_work(models, tmp_path, capsys):
    (tmp_path / "file").write_text("")
    unwritable = tmp_path / "file" / "out.json"
    ood = ("ood", "--model", tmp_path / "no-model", "--in", "a.npz", "--out", "b.npz")
    cli_fails(capsys, *ood, "--json", unwritable, code=4, match="--json .*: no directory")
    fid = ("fid", "--model", models / "tiny.keras", "--data", "digits", "--num", 4)
    cli_fails(capsys, *fid, "--record", unwritable, code=4, match="--record .*: no directory")
    (models / "fid.json").write_text("{}")  # an earlier result, next to the model
    try:
        cli_fails(capsys, *fid, code=4, match=r"fid.json: the file exists; pass --overwrite")
    finally:
        (models / "fid.json").unlink()


def test_import_reference_never_writes_into_another_run(tmp_path, capsys):
    imports = ("import-reference", "--hat", tmp_path / "no.ckpt", "--generator", tmp_path / "no.ckpt")
    imports = (*imports, "--mode", "synthesis", "--image-size", 32, "--run-dir", tmp_path / "run")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.yaml").write_text("name: trained\n")
    cli_fails(capsys, *imports, code=4, match="holds a trained run")
    (tmp_path / "run" / "config.yaml").unlink()
    (tmp_path / "run" / "model.keras").write_bytes(b"an earlier import")
    cli_fails(capsys, *imports, code=4, match=r"holds an earlier import .*pass --overwrite")
    # With --overwrite the directory is accepted, and the (absent) checkpoint is what stops the import.
    cli_fails(capsys, *imports, "--overwrite", code=3, match="no.ckpt")
    assert (tmp_path / "run" / "model.keras").read_bytes() == b"an earlier import"


# --------------------------------------------------------------------- export
def test_export_validates_before_publishing_a_version(tmp_path, capsys, models):
    model = tiny_model()
    with pytest.raises(ValueError, match=rf"version={MAX_VERSION + 1} must be an integer in \[1, {MAX_VERSION}\]"):
        export_model(model, tmp_path / "serving", "tiny", version=MAX_VERSION + 1)
    cli_fails(
        capsys, "export", models / "tiny.keras", "--base-path", tmp_path / "serving", "--name", "tiny",
        "--version", MAX_VERSION + 1, code=1, match="int64",
    )  # fmt: skip
    assert not (tmp_path / "serving").exists()
    (tmp_path / "serving").mkdir()
    (tmp_path / "serving" / MODELS_CONFIG).write_text("model_config_list { config { name: ")
    with pytest.raises(ValueError, match="is not a ModelServerConfig in text format"):
        export_model(model, tmp_path / "serving", "tiny")
    assert sorted(p.name for p in (tmp_path / "serving").iterdir()) == [MODELS_CONFIG]  # no version, no temporary


def test_every_signature_refuses_an_empty_batch_by_name(tmp_path):
    path = export_model(tiny_model(), tmp_path, "tiny")
    loaded = tf.saved_model.load(str(path))
    for name, function in loaded.signatures.items():
        specs = function.structured_input_signature[1]
        empty = {key: tf.zeros([0, *spec.shape[1:]], spec.dtype) for key, spec in specs.items()}
        signature = "ood_score" if name == "serving_default" else name
        with pytest.raises(tf.errors.InvalidArgumentError, match=rf"{signature}: \w+ must hold at least one row"):
            function(**empty)


def test_sigterm_during_an_export_cleans_up_and_exits_143(models, tmp_path):
    export = ("export", models / "tiny.keras", "--base-path", tmp_path / "serving", "--name", "tiny")
    command = [sys.executable, SIGNAL_HOOK, "before-rename", 0, "SIGTERM", "--", *export]
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True, timeout=600)
    assert result.returncode == 143, result.stderr[-3000:]
    assert result.stderr.strip().splitlines()[-1] == "hat-ebm export: interrupted: terminated by SIGTERM"
    assert list((tmp_path / "serving" / "tiny").iterdir()) == []  # the temporary SavedModel is removed
    assert not (tmp_path / "serving" / MODELS_CONFIG).exists()
