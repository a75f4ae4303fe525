"""The ``hat-ebm`` entry point (``hat_ebm_tf.cli.main``) and the flags its commands share (``hat_ebm_tf.cli.common``).

Every failure class ends in one line and a documented exit code; every sampling command takes the same sampler flags.
"""

import argparse
import dataclasses
import signal

import pytest
import tensorflow as tf

from hat_ebm_tf.argtypes import non_negative_float, non_negative_int, positive_float, positive_float_or_none
from hat_ebm_tf.cli.common import SAMPLER_FLAGS, sampler_overrides
from hat_ebm_tf.cli.main import build_parser, describe_failure, main
from hat_ebm_tf.errors import (
    ConfigError,
    DataError,
    LimitError,
    ModelFileError,
    RunDirError,
    TrainingDiverged,
    TrainingInterrupted,
)
from hat_ebm_tf.sampler_config import LangevinConfig
from tests.helpers import cli_fails, exit_code_is_documented


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
    assert exit_code_is_documented(code), f"exit code {code} is not in docs/formats.md's table"


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


# ------------------------------------------------------------ sampler flags
# Every sampler flag, and the LangevinConfig settings it gives.
SAMPLER_ARGV = (
    "--steps 7 --step-size 0.01 --latent-step-size 0.02 --temperature 0.5 --no-noise --max-residual-norm none "
    "--tau 2 --init-scale-latent 0.5 --init-scale-residual 0.1 --no-metropolis"
).split()
SAMPLER_SETTINGS = {
    "num_steps": 7,
    "step_size": 0.01,
    "latent_step_size": 0.02,
    "temperature": 0.5,
    "noise": False,
    "max_residual_norm": None,
    "tau": 2.0,
    "init_scale_latent": 0.5,
    "init_scale_residual": 0.1,
    "metropolis": False,
}
# The commands that draw samples, each with its required arguments.
SAMPLING_COMMANDS = {
    "sample": ["run"],
    "longrun": ["run"],
    "fid": ["--model", "run"],
    "export": ["run", "--base-path", "b", "--name", "n"],
    "import-reference": "--hat h --generator g --mode refine --image-size 32 --run-dir r".split(),
}


def test_sampler_flags_cover_every_langevin_setting_with_its_type():
    # Built from LangevinConfig's fields; the flag names are public (docs/sampling.md documents them).
    assert {field: flag for field, (flag, _, _) in SAMPLER_FLAGS.items()} == {
        "num_steps": "--steps",
        "step_size": "--step-size",
        "latent_step_size": "--latent-step-size",
        "temperature": "--temperature",
        "noise": "--noise",
        "max_residual_norm": "--max-residual-norm",
        "tau": "--tau",
        "init_scale_latent": "--init-scale-latent",
        "init_scale_residual": "--init-scale-residual",
        "metropolis": "--metropolis",
    }
    fields = {f.name: f.type for f in dataclasses.fields(LangevinConfig)}
    assert set(SAMPLER_FLAGS) == set(fields) - {"update_latents"} == set(SAMPLER_SETTINGS)
    # Each flag refuses what its setting refuses: the float32 rule of positive settings (hat_ebm_tf.sampler_config).
    kinds = {"num_steps": non_negative_int, "noise": bool, "metropolis": bool}
    kinds |= dict.fromkeys(["step_size", "temperature"], positive_float)
    kinds |= dict.fromkeys(["latent_step_size", "tau", "init_scale_latent", "init_scale_residual"], non_negative_float)
    kinds["max_residual_norm"] = positive_float_or_none
    assert {field: kind for field, (_, kind, _) in SAMPLER_FLAGS.items()} == kinds
    assert all(text for _, _, text in SAMPLER_FLAGS.values())


def test_every_sampling_command_takes_the_same_sampler_flags():
    parser = build_parser()
    [subparsers] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    # By destination: `train --steps` (training steps) and `bench --steps` (timed chain length) are other settings.
    with_flags = {
        name for name, sub in subparsers.choices.items() if {a.dest for a in sub._actions} & set(SAMPLER_FLAGS)
    }
    assert with_flags == set(SAMPLING_COMMANDS)
    for command, argv in SAMPLING_COMMANDS.items():
        assert sampler_overrides(parser.parse_args([command, *argv, *SAMPLER_ARGV])) == SAMPLER_SETTINGS, command
        assert sampler_overrides(parser.parse_args([command, *argv, "--noise"])) == {"noise": True}, command
        assert sampler_overrides(parser.parse_args([command, *argv])) == {}, command  # the default sampler stays


def test_a_bad_sampler_flag_is_named(tiny_run, capsys):
    root, _ = tiny_run
    # Refused as the command line is parsed, before any work.
    cli_fails(
        capsys, "sample", root / "run", "--step-size", "-1", "--out", root / "never.npz", code=2,
        match=r"hat-ebm sample: error: argument --step-size: -1 must be > 0 and finite",
    )  # fmt: skip
    # A combination of settings is refused by LangevinConfig, naming it.
    cli_fails(
        capsys, "sample", root / "run", "--no-noise", "--metropolis", "--out", root / "never.npz", code=2,
        match=r"hat-ebm sample: error: sampler flags: LangevinConfig: metropolis=True needs noise=True",
    )  # fmt: skip
    assert not (root / "never.npz").exists()


def test_every_help_names_the_switch_of_tensorflows_logging(capsys):
    for argv in (["--help"], ["train", "--help"], ["sample", "--help"], ["bench", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        assert "TF_CPP_MIN_LOG_LEVEL=0" in " ".join(capsys.readouterr().out.split()), argv
