"""An export end to end: used without hat_ebm_tf, scored by `hat-ebm ood`, serving the run's own sampler.

Real SavedModels, loaded in this process and in a fresh Python without the
package; `hat-ebm` through its ``main()`` (the installed script runs in the
``exported`` fixture and in tests/test_cli.py). The signatures are in
tests/test_signatures.py, the layout in tests/test_savedmodel.py.
"""

import dataclasses
import json
from types import SimpleNamespace

import keras
import numpy as np
import pytest
import tensorflow as tf
import yaml

from hat_ebm_tf.cli.main import main
from hat_ebm_tf.data import model_range_to_uint8
from hat_ebm_tf.sampler_config import LangevinConfig
from hat_ebm_tf.serving.savedmodel import SAMPLER_CONFIG_FILE
from tests.helpers import (
    call_signature,
    finish_process,
    main_in,
    sklearn_ood_metrics,
    start_without_hat_ebm_tf,
    tiny_images,
)

# Run by start_without_hat_ebm_tf: TensorFlow, NumPy and the stand-alone client only.
FRESH_PROCESS = """
model_dir, inputs, outputs = sys.argv[1:]
data = np.load(inputs)
loaded = tf.saved_model.load(model_dir + "/1")


def run(signature, output, **inputs):
    return loaded.signatures[signature](**{k: tf.constant(v) for k, v in inputs.items()})[output].numpy()


results = {
    "energy": run("energy", "energy", images=data["images"]),
    "energy_uint8": run("energy_uint8", "energy", images=data["pixels"]),
    "sample": run("sample", "images", seeds=data["seeds"]),
    "refine": run("refine", "images", latents=data["latents"], seeds=data["seeds"]),
    "generate": run("generate", "images", latents=data["latents"]),
    "scorer": load_scorer(model_dir)(data["images"]),
}
np.savez(outputs, **results)
"""


# ------------------------------------------------------- use without the package
def test_standalone_client_without_hat_ebm_tf_matches_the_in_process_model(exported, tmp_path):
    model, images, seeds = exported.model, tiny_images(6), np.arange(6, dtype=np.int64)
    latents = np.random.default_rng(1).normal(size=(6, 4)).astype(np.float32)
    np.savez(tmp_path / "inputs.npz", images=images, pixels=model_range_to_uint8(images), seeds=seeds, latents=latents)
    fresh = start_without_hat_ebm_tf(tmp_path, FRESH_PROCESS, exported.version.parent, "inputs.npz", "outputs.npz")
    # Computed while the fresh process runs. Serving seed s is the in-process
    # row seed (0, s), so seeds 0..5 are the chains of model.sample(6, seed=0).
    energy = model.energy(images).numpy()
    expected = {
        "sample": model.sample(6, seed=0),
        "refine": model.refine(latents, seed=0).images,
        "generate": model.generate(latents),
    }
    finish_process(fresh)
    out = np.load(tmp_path / "outputs.npz")
    # The same graph at the same batch size: bit for bit.
    for key, value in {"energy": energy, "scorer": energy, **expected}.items():
        np.testing.assert_array_equal(out[key], value, err_msg=key)
    # The graph may turn x / 127.5 into x * (1 / 127.5): 1-ulp pixel differences.
    np.testing.assert_allclose(out["energy_uint8"], energy, rtol=1e-6, atol=1e-7)


# ------------------------------------------------------------------ hat-ebm ood
def test_ood_command_reports_the_metrics_of_the_savedmodel_score(exported, tmp_path, capsys):
    inside, outside = tiny_images(40, seed=2), np.random.default_rng(3).uniform(-1, 1, (30, 16, 16, 1))
    outside = np.clip(outside * 0.2 + 0.7, -1, 1).astype(np.float32)
    np.savez(tmp_path / "in.npz", images=model_range_to_uint8(inside))
    np.save(tmp_path / "out.npy", outside)
    # In this process: tests/test_calibration.py runs the installed `hat-ebm ood`.
    main([
        "ood", "--model", str(exported.version.parent), "--in", str(tmp_path / "in.npz"),
        "--out", str(tmp_path / "out.npy"), "--out", str(tmp_path / "in.npz"), "--json", str(tmp_path / "report.json"),
    ])  # fmt: skip
    stdout = capsys.readouterr().out
    assert "AUROC" in stdout and "FPR@95%TPR" in stdout and "out.npy" in stdout
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["model"] == str(exported.version) and report["in"]["num"] == 40
    expected = sklearn_ood_metrics(exported.model.energy(inside), exported.model.energy(outside))
    got = report["out"][0]
    for key in ("auroc", "aupr", "fpr_at_95_tpr"):
        assert got[key] == pytest.approx(expected[key], abs=1e-6), key
    assert report["out"][1]["auroc"] == pytest.approx(0.5)  # the in-distribution set against itself


# ------------------------------------------------- the run's sampler, served
NUM_SERVED = 6
# Sampler flags given to `hat-ebm export`, and the settings they override.
EXPORT_FLAGS = ("--steps", "1", "--temperature", "0.5", "--max-residual-norm", "none", "--no-noise")
FLAG_SETTINGS = {"num_steps": 1, "temperature": 0.5, "max_residual_norm": None, "noise": False}


@pytest.fixture(scope="module")
def served_run(tiny_run):
    """The tiny trained run exported as it is and with sampler flags, and drawn from by `hat-ebm sample`."""
    root, _ = tiny_run
    commands = {
        "default": ("export", "run", "--base-path", "served", "--name", "run"),
        "flags": ("export", "run", "--base-path", "served_flags", "--name", "run", *EXPORT_FLAGS),
        "sample": ("sample", "run", "--num", NUM_SERVED, "--seed", 0, "--out", "served_samples.npz"),
    }
    # In this process: the installed script exports in the `exported` fixture and samples in tests/test_cli.py.
    stdout = {key: main_in(root, *command) for key, command in commands.items()}
    evaluation = LangevinConfig.from_dict(
        yaml.safe_load((root / "run" / "config.yaml").read_text())["evaluation"]["sampler"]
    )
    model = keras.saving.load_model(root / "run" / "model.keras")
    assert evaluation != model.sampler_config  # so that the tests can tell which sampler was baked in
    versions = {"default": root / "served" / "run" / "1", "flags": root / "served_flags" / "run" / "1"}
    return SimpleNamespace(
        root=root,
        model=model,
        stdout=stdout,
        versions=versions,
        loaded={key: tf.saved_model.load(str(path)) for key, path in versions.items()},
        baked={"default": evaluation, "flags": dataclasses.replace(evaluation, **FLAG_SETTINGS)},
    )


def test_served_samples_are_hat_ebm_sample_of_the_run(served_run):
    seeds = np.arange(NUM_SERVED, dtype=np.int64)  # row seeds (0, i), as `hat-ebm sample --seed 0`
    served = call_signature(served_run.loaded["default"], "sample", seeds=seeds)["images"]
    pixels = np.load(served_run.root / "served_samples.npz")["images"]
    np.testing.assert_array_equal(model_range_to_uint8(served), pixels)
    assert len(np.unique(pixels)) > 50  # not a saturated grid, where any images would agree
    # The float images `hat-ebm sample` converted: the run's evaluation sampler, not the training sampler.
    model = served_run.model
    np.testing.assert_allclose(served, model.sample(NUM_SERVED, seed=0, config=served_run.baked["default"]), atol=1e-6)
    assert np.abs(served - model.sample(NUM_SERVED, seed=0)).max() > 1e-2


def test_sampler_flags_override_the_baked_sampler(served_run):
    seeds = np.arange(NUM_SERVED, dtype=np.int64)
    served = call_signature(served_run.loaded["flags"], "sample", seeds=seeds)["images"]
    expected = served_run.model.sample(NUM_SERVED, seed=0, config=served_run.baked["flags"])
    np.testing.assert_allclose(served, expected, atol=1e-6)
    assert np.abs(served - call_signature(served_run.loaded["default"], "sample", seeds=seeds)["images"]).max() > 1e-2


@pytest.mark.parametrize("export", ["default", "flags"])
def test_the_baked_sampler_reads_back_from_the_savedmodel_and_is_printed(served_run, export):
    baked = served_run.baked[export]
    rows = call_signature(served_run.loaded[export], "sampler_config", seeds=np.array([3, 1, 4], np.int64))["json"]
    assert [LangevinConfig.from_dict(json.loads(row)) for row in rows] == [baked] * 3
    asset = (served_run.versions[export] / SAMPLER_CONFIG_FILE).read_text()
    assert LangevinConfig.from_dict(json.loads(asset)) == baked
    printed = served_run.stdout[export].split("sampler baked into sample and refine")[1]
    for key, value in baked.to_dict().items():
        assert f"{key}={value}" in printed, key
