"""The installed `hat-ebm` command, run from outside the checkout."""

import json
import os

import numpy as np
import yaml

from tests.helpers import cli_fails, hat_ebm, main_in


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
    table = result.stdout[result.stdout.index("sample quality (digits:train, 16×16×1)") :].splitlines()  # at the end
    assert {"samples", "floor", "baseline", "generator"} <= {line.split()[0] for line in table[3:]}


def test_sample_loads_the_run_again(tiny_run):
    root, _ = tiny_run
    args = ("--num", "7", "--seed", "3", "--out", "s.npz", "--png", "s.png", "--quality")
    # As a user runs it, without TF_CPP_MIN_LOG_LEVEL (tests/conftest.py sets it for the suite).
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    result = hat_ebm("sample", "run", *args, cwd=root, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr == ""  # none of TensorFlow's C++ start-up lines (CUDA, cuInit, CPU features)
    images = np.load(root / "s.npz")["images"]
    assert images.shape == (7, 16, 16, 1) and (root / "s.png").is_file()
    table = result.stdout[result.stdout.index("sample quality (digits:train, 16×16×1)") :].splitlines()
    assert [line.split()[:2] for line in table[3:6]] == [["samples", "7"], ["floor", "7"], ["baseline", "7"]]


def test_a_bad_config_is_named_with_its_exit_code(tmp_path):
    # The installed script's failure path; each failure class's code and line, in process, in tests/test_main.py.
    (tmp_path / "bad.yaml").write_text("mode: synthesis\ntraining: {stepz: 3}\n")
    result = hat_ebm("train", "--config", "bad.yaml", "--run-dir", "r", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("hat-ebm train: ")
    assert "unknown keys ['stepz']" in result.stderr
    assert not (tmp_path / "r").exists()


def test_train_on_your_own_images_with_the_derived_recipe(tmp_path, glyph_classifier):
    out = main_in(
        tmp_path, "train", "--data", "glyphs:train[:100]", "--image-size", "16", "--run-dir", "r", "--steps", "2"
    )
    recipe_text = out[out.index("recipe for glyphs:train[:100]:") : out.index("{")]
    assert "max_residual_norm: 1.0" in recipe_text and "drift_weight: 1.0" in recipe_text
    saved = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())
    assert saved["data"]["source"] == "glyphs:train[:100]" and saved["training"]["steps"] == 2
    # The run resumes like any config run: the same command again trains nothing more.
    assert "run directory: r" in main_in(tmp_path, "train", "--config", "r/config.yaml", "--run-dir", "r")
    quality = json.loads((tmp_path / "r" / "quality.json").read_text())
    assert quality["measure"]["data"] == "glyphs:train[:100]" and quality["measure"]["num_train"] == 100
    assert "confidence" in out[out.index("sample quality (glyphs:train[:100], 16×16×1)") :]


def test_train_refuses_recipe_flags_without_data(tmp_path, capsys):
    cli_fails(capsys, "train", "--run-dir", str(tmp_path / "r"), "--image-size", "32", code=2, match="go with --data")


def test_tensorflows_logging_is_back_when_the_user_sets_its_level(tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "0"}
    result = hat_ebm("sample", "nowhere", cwd=tmp_path, env=env)
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("hat-ebm sample: model file error: no trained model at")
    assert len(lines) > 1  # TensorFlow's own lines before it, as TF_CPP_MIN_LOG_LEVEL=0 asks
