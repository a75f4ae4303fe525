"""The installed `hat-ebm` command, run from outside the checkout."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from training.config import CONFIG_DIR

HAT_EBM = Path(sys.executable).parent / "hat-ebm"


def hat_ebm(*args, cwd):
    if not HAT_EBM.exists():
        pytest.fail(f"{HAT_EBM} is not installed: run `pip install .` (the README's test command does)")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [str(HAT_EBM), *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    config = yaml.safe_load((CONFIG_DIR / "digits.yaml").read_text())
    config["networks"].update(hat_width=8, generator_width=8, latent_dim=4)
    config["sampler"]["num_steps"] = 2
    config["training"].update(steps=4, steps_per_epoch=2, batch_size=8, bank_size=16)
    config["evaluation"] = {"num_samples": 12, "batch_size": 5}
    (root / "tiny.yaml").write_text(yaml.safe_dump(config))
    result = hat_ebm("train", "--config", "tiny.yaml", "--run-dir", "run", cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    return root, result


def test_train_writes_the_run_directory(tiny_run):
    root, _ = tiny_run
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
    assert json.loads((run / "quality.json").read_text())["real_held_out"]["classes_present"] == 10


def test_sample_loads_the_run_again(tiny_run):
    root, _ = tiny_run
    result = hat_ebm("sample", "run", "--num", "7", "--seed", "3", "--out", "s.npz", "--png", "s.png", cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    images = np.load(root / "s.npz")["images"]
    assert images.shape == (7, 16, 16, 1) and (root / "s.png").is_file()


def test_bad_config_and_missing_model_are_named(tmp_path):
    (tmp_path / "bad.yaml").write_text("mode: synthesis\ntraining: {stepz: 3}\n")
    result = hat_ebm("train", "--config", "bad.yaml", "--run-dir", "r", cwd=tmp_path)
    assert result.returncode != 0 and "unknown keys ['stepz']" in result.stderr
    assert not (tmp_path / "r").exists()
    result = hat_ebm("sample", "nowhere", cwd=tmp_path)
    assert result.returncode != 0 and "no trained model at" in result.stderr
