"""The installed `hat-ebm` command, run from outside the checkout."""

import argparse
import dataclasses
import json

import numpy as np
import pytest

from hat_ebm_tf.argtypes import float_or_none
from hat_ebm_tf.cli.common import SAMPLER_FLAGS, sampler_overrides
from hat_ebm_tf.cli.main import build_parser, main
from hat_ebm_tf.sampler import LangevinConfig
from tests.helpers import hat_ebm


def test_train_writes_the_run_directory(tiny_run):
    root, result = tiny_run
    run = root / "run"
    for name in (
        "config.yaml",
        "model.keras",
        "history.json",
        "training_curve.png",
        "samples.npz",
        "samples.png",
        "quality.json",
    ):
        assert (run / name).is_file(), name
    images = np.load(run / "samples.npz")["images"]
    assert images.dtype == np.uint8 and images.shape == (12, 16, 16, 1)
    history = json.loads((run / "history.json").read_text())
    assert history["step"] == [2, 4] and len(history["energy_diff"]) == 2
    quality = json.loads((run / "quality.json").read_text())
    assert [quality[row]["num_images"] for row in ("samples", "floor", "baseline", "generator")] == [12] * 4
    assert quality["measure"]["classifier_held_out_accuracy"] >= 0.97
    table = result.stdout[result.stdout.index("digits quality at 16×16") :].splitlines()  # printed at the end
    assert {"samples", "floor", "baseline", "generator"} <= {line.split()[0] for line in table[2:]}


def test_sample_loads_the_run_again(tiny_run):
    root, _ = tiny_run
    args = ("--num", "7", "--seed", "3", "--out", "s.npz", "--png", "s.png", "--quality")
    result = hat_ebm("sample", "run", *args, cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    images = np.load(root / "s.npz")["images"]
    assert images.shape == (7, 16, 16, 1) and (root / "s.png").is_file()
    table = result.stdout[result.stdout.index("digits quality at 16×16") :].splitlines()
    assert [line.split()[:2] for line in table[2:5]] == [["samples", "7"], ["floor", "7"], ["baseline", "7"]]


def test_bad_config_and_missing_model_are_named(tmp_path):
    (tmp_path / "bad.yaml").write_text("mode: synthesis\ntraining: {stepz: 3}\n")
    result = hat_ebm("train", "--config", "bad.yaml", "--run-dir", "r", cwd=tmp_path)
    assert result.returncode != 0 and "unknown keys ['stepz']" in result.stderr
    assert not (tmp_path / "r").exists()
    result = hat_ebm("sample", "nowhere", cwd=tmp_path)
    assert result.returncode != 0 and "no trained model at" in result.stderr


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
    fields = {f.name: f.type for f in dataclasses.fields(LangevinConfig)}
    assert set(SAMPLER_FLAGS) == set(fields) - {"update_latents"} == set(SAMPLER_SETTINGS)
    for field, (flag, kind, _) in SAMPLER_FLAGS.items():
        assert flag == {"num_steps": "--steps"}.get(field, "--" + field.replace("_", "-")), field
        assert fields[field] == (float | None if kind is float_or_none else kind), field


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


def test_a_bad_sampler_flag_is_named(tiny_run):
    root, _ = tiny_run
    with pytest.raises(
        SystemExit, match=r"hat-ebm sample: error: sampler flags: LangevinConfig: step_size=-1\.0 must"
    ) as exit:
        main(["sample", str(root / "run"), "--step-size", "-1", "--out", str(root / "never.npz")])
    assert exit.value.code == 2  # a bad command-line value
    assert not (root / "never.npz").exists()
