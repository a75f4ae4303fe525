"""The training job reaches every data source through its config alone."""

import json

import numpy as np
import pytest
import tensorflow_datasets as tfds
import yaml
from PIL import Image

from training.config import CONFIG_DIR, parse_config
from training.train import run_training


def tiny_config(data):
    values = yaml.safe_load((CONFIG_DIR / "digits.yaml").read_text())
    values["data"] = data
    values["networks"].update(hat_width=8, generator_width=8, latent_dim=4)
    values["sampler"]["num_steps"] = 2
    values["training"].update(steps=2, steps_per_epoch=2, batch_size=4, bank_size=8)
    values["evaluation"] = {"num_samples": 4, "batch_size": 4}
    return parse_config(values)


def _samples(run_dir):
    return np.load(run_dir / "samples.npz")["images"]


def test_tfds_source(tmp_path):
    config = tiny_config(
        {"source": "tfds:cifar10", "data_dir": str(tmp_path / "tfds"), "image_size": 16, "channels": 3}
    )
    with tfds.testing.mock_data(num_examples=8):
        summary = run_training(config, tmp_path / "run", verbose=0)
    assert summary["steps"] == 2 and _samples(tmp_path / "run").shape == (4, 16, 16, 3)
    assert not (tmp_path / "run" / "quality.json").exists()


@pytest.mark.parametrize("kind", ["folder", "array"])
def test_folder_and_array_sources(kind, tmp_path, rng):
    images = rng.integers(0, 256, (6, 20, 20, 3), dtype=np.uint8)
    if kind == "folder":
        for i, image in enumerate(images):
            Image.fromarray(image).save(tmp_path / f"{i}.png")
        source = str(tmp_path)
    else:
        np.savez(tmp_path / "images.npz", images=images)
        source = str(tmp_path / "images.npz")
    config = tiny_config({"source": source, "image_size": 16, "channels": 3, "flip": True})
    run_training(config, tmp_path / "run", verbose=0)
    assert _samples(tmp_path / "run").shape == (4, 16, 16, 3)
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["data"]["source"] == source
    assert json.loads((tmp_path / "run" / "history.json").read_text())["step"] == [2]


def _digits_config(**training):
    values = yaml.safe_load((CONFIG_DIR / "digits.yaml").read_text())
    values["networks"].update(hat_width=8, generator_width=8, latent_dim=4)
    values["sampler"]["num_steps"] = 2
    values["training"].update(batch_size=4, bank_size=16, **training)
    values["evaluation"] = {"num_samples": 4, "batch_size": 4}
    return values


def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path):
    import signal
    import subprocess
    import time

    import keras

    import hat_ebm_tf  # noqa: F401
    from tests.test_cli import HAT_EBM

    (tmp_path / "c.yaml").write_text(yaml.safe_dump(_digits_config(steps=30, steps_per_epoch=2)))
    command = [str(HAT_EBM), "train", "--config", "c.yaml"]
    assert subprocess.run([*command, "--run-dir", "full"], cwd=tmp_path, capture_output=True).returncode == 0
    proc = subprocess.Popen(
        [*command, "--run-dir", "killed"], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    state = tmp_path / "killed" / "checkpoints" / "checkpoint"
    deadline = time.time() + 300
    while not state.exists() and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "killed" / "model.keras").exists(), "the run finished before it could be killed"
    resumed = subprocess.run([*command, "--run-dir", "killed"], cwd=tmp_path, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    full = keras.saving.load_model(tmp_path / "full" / "model.keras")
    again = keras.saving.load_model(tmp_path / "killed" / "model.keras")
    assert int(again.optimizer.iterations.numpy()) == 30
    for a, b in zip(full.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    history = json.loads((tmp_path / "killed" / "history.json").read_text())
    assert history["step"] == list(range(2, 31, 2))


def test_injected_nan_trips_the_watchdog_and_the_last_checkpoint_loads(tmp_path):
    import tensorflow as tf

    from training.callbacks import TrainingDiverged

    # From step 2 on the learning rate is 1e30: the weights overflow, the energies become NaN.
    config = parse_config(_digits_config(steps=6, steps_per_epoch=2, hat_learning_rate=[[1e-4, 0], [1e30, 2]]))
    with pytest.raises(TrainingDiverged, match=r"training diverged at step [3-6]: \w+ is (nan|inf)") as info:
        run_training(config, tmp_path / "run", verbose=0)
    assert "ckpt-2" in str(info.value)
    latest = tf.train.latest_checkpoint(tmp_path / "run" / "checkpoints")
    assert latest.endswith("ckpt-2")
    names = [name for name, shape in tf.train.list_variables(latest) if shape and "OBJECT_GRAPH" not in name]
    values = [tf.train.load_variable(latest, name) for name in names]
    assert values and all(np.all(np.isfinite(v)) for v in values)


def test_rollback_restores_lowers_the_learning_rate_and_logs(tmp_path, caplog):
    from training.callbacks import TrainingDiverged

    values = _digits_config(steps=6, steps_per_epoch=2, hat_learning_rate=[[1e-4, 0], [1e30, 2]])
    values["training"].update(on_divergence="rollback", max_rollbacks=2, rollback_lr_factor=0.5)
    with caplog.at_level("WARNING", logger="hat_ebm_tf.training"), pytest.raises(TrainingDiverged):
        run_training(parse_config(values), tmp_path / "run", verbose=0)
    rollbacks = [r.getMessage() for r in caplog.records if "rollback" in r.getMessage()]
    assert len(rollbacks) == 2 and "rollback 1/2" in rollbacks[0] and "scaled by 0.25" in rollbacks[1]


def test_mixed_precision_keeps_chain_state_float32(digits16):
    import keras

    from hat_ebm_tf.data import array_dataset
    from tests.conftest import tiny_model

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = tiny_model()
        assert model.hat.compute_dtype == "bfloat16" and model.hat.weights[0].dtype == "float32"
        chains = model.refine(np.zeros((3, 4), "float32"), seed=0)
        assert all(t.dtype == "float32" for t in chains)  # latents, residuals, images, both diagnostics
        assert model.sample(2, seed=0).dtype == "float32" and model.energy(digits16[:2]).dtype == "float32"
        history = model.fit(array_dataset(digits16, 8), steps_per_epoch=1, verbose=0).history
        assert np.isfinite(history["loss"][0])
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_config_builds_its_model_at_a_tiny_width(path):
    import dataclasses

    from training.config import load_config
    from training.train import build_model

    config = load_config(path)
    nets = dataclasses.replace(config.networks, hat_width=16, generator_width=16, latent_dim=8)
    config = dataclasses.replace(
        config, networks=nets, training=dataclasses.replace(config.training, bank_size=8, batch_size=4)
    )
    model = build_model(config, pretrained=False)
    size, channels = config.data.image_size, config.data.channels
    assert model(np.zeros((2, size, size, channels), "float32")).shape[0] == 2
