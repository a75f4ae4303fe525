"""The training job reaches every data source through its config alone."""

import json

import numpy as np
import pytest
import tensorflow_datasets as tfds
import yaml
from PIL import Image

from hat_ebm_tf.config import CONFIG_DIR, parse_config
from hat_ebm_tf.training.train import run_training
from tests.helpers import (
    array_config,
    history_steps,
    latest_checkpoint,
    tiny_digits_config,
    train_in_process,
    train_in_subprocess,
)


def tiny_config(data):
    values = tiny_digits_config(steps=2, steps_per_epoch=2, bank_size=8)
    values["data"] = data
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
    # The report compares with the builder's test split.
    measure = json.loads((tmp_path / "run" / "quality.json").read_text())["measure"]
    assert measure["data"] == "tfds:cifar10:train" and measure["num_held_out"] == 8


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


@pytest.fixture(scope="module")
def signal_runs(tmp_path_factory):
    """A directory holding ``c.yaml`` (6 steps, 2 an epoch) and its uninterrupted run ``full``."""
    root = tmp_path_factory.mktemp("signals")
    (root / "c.yaml").write_text(yaml.safe_dump(array_config(root, steps=6, steps_per_epoch=2)))
    train_in_process(root, "full")  # only the interrupted runs need a process of their own
    return root


def _resume_equals_full(root, run_dir):
    import keras

    import hat_ebm_tf

    hat_ebm_tf.register_keras_classes()

    train_in_process(root, run_dir)  # the resume
    full = keras.saving.load_model(root / "full" / "model.keras")
    again = keras.saving.load_model(root / run_dir / "model.keras")
    assert int(again.optimizer.iterations.numpy()) == 6
    # Round-off only. Idle, the runs agree bit for bit; under load, a run once
    # differed from another process's by up to 4.5e-6 (1e-4 relative) after 6
    # steps, and the same tests in one process gave bit-equal weights in one
    # run and 6e-8 apart in the next: the order of some concurrent float work
    # depends on timing. A resume that restarts the data (or the noise) moves
    # weights by about the learning rate, 1e-3: a hundred times this bound.
    for a, b in zip(full.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_sigkill_then_resume_equals_an_uninterrupted_run(signal_runs):
    """SIGKILL right after the checkpoint of step 2 is written: the moment that used to lose its history row."""
    import signal

    killed = train_in_subprocess(signal_runs, "killed", hook=("after-checkpoint", 2, "SIGKILL"))
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    run = signal_runs / "killed"
    assert latest_checkpoint(run) == "ckpt-2" and not (run / "model.keras").exists()
    assert history_steps(run) == [2]  # exactly the checkpointed epochs
    _resume_equals_full(signal_runs, "killed")
    assert history_steps(run) == [2, 4, 6]


def test_sigint_mid_epoch_checkpoints_that_step_and_resumes_exactly(signal_runs):
    interrupted = train_in_subprocess(signal_runs, "sigint", hook=("after-step", 3, "SIGINT"))
    assert interrupted.returncode == 130, interrupted.stderr[-3000:]
    assert "Traceback" not in interrupted.stderr
    last = interrupted.stderr.strip().splitlines()[-1]
    assert last.startswith("hat-ebm train: interrupted: SIGINT at step 3: wrote the checkpoint ")
    assert "ckpt-3" in last and last.endswith("run the same `hat-ebm train` command again to resume")
    run = signal_runs / "sigint"
    assert latest_checkpoint(run) == "ckpt-3" and history_steps(run) == [2, 3]
    _resume_equals_full(signal_runs, "sigint")  # the resumed run first completes the epoch: steps 4, then 6
    assert history_steps(run) == [2, 3, 4, 6]


def test_sigterm_exits_143_after_checkpointing(signal_runs):
    terminated = train_in_subprocess(signal_runs, "sigterm", hook=("after-step", 4, "SIGTERM"))
    assert terminated.returncode == 143, terminated.stderr[-3000:]
    assert "hat-ebm train: interrupted: SIGTERM at step 4" in terminated.stderr and "Traceback" not in terminated.stderr
    run = signal_runs / "sigterm"
    assert latest_checkpoint(run) == "ckpt-4" and history_steps(run) == [2, 4]
    assert not (run / "model.keras").exists()


def test_rollback_restores_lowers_the_learning_rate_and_logs(tmp_path, caplog):
    from hat_ebm_tf.errors import TrainingDiverged

    values = tiny_digits_config(steps=6, steps_per_epoch=2, hat_learning_rate=[[1e-4, 0], [1e30, 2]])
    values["training"].update(on_divergence="rollback", max_rollbacks=2, rollback_lr_factor=0.5)
    with caplog.at_level("WARNING", logger="hat_ebm_tf.training"), pytest.raises(TrainingDiverged):
        run_training(parse_config(values), tmp_path / "run", verbose=0)
    rollbacks = [r.getMessage() for r in caplog.records if "rollback" in r.getMessage()]
    assert len(rollbacks) == 2 and "rollback 1/2" in rollbacks[0] and "scaled by 0.25" in rollbacks[1]


def test_a_training_run_restores_fits_segments_and_rolls_back(tmp_path):
    import tensorflow as tf

    from hat_ebm_tf.errors import TrainingDiverged
    from hat_ebm_tf.training.callbacks import StopOnSignal
    from hat_ebm_tf.training.train import TrainingRun

    values = array_config(tmp_path, steps=4, steps_per_epoch=2)
    values["training"].update(on_divergence="rollback", max_rollbacks=1, rollback_lr_factor=0.5)
    (tmp_path / "run").mkdir()
    run = TrainingRun(parse_config(values), tf.distribute.get_strategy(), tmp_path / "run", chief=True)
    assert run.restore() is None and run.step == 0
    with StopOnSignal() as stop:
        records, watchdog = run.fit_segment(run.dataset(0), stop, verbose=0)
    # One fit call over both epochs, a checkpoint at each epoch end.
    assert run.step == 4 and watchdog.diverged is None and run.manager.latest_checkpoint.endswith("ckpt-4")
    assert history_steps(tmp_path / "run") == records.history["step"] == [2, 4] and len(run.manager.checkpoints) == 2
    saved = run.model.get_weights()
    kernel = run.model.hat.weights[0]
    kernel.assign(tf.fill(kernel.shape, float("nan")))  # as a diverged step leaves it
    run.roll_back("a divergence")
    assert run.rollbacks == 1 and float(run.lr_scale.numpy()) == 0.5 and run.step == 4
    for a, b in zip(run.model.get_weights(), saved, strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(TrainingDiverged, match=r"^again; the last good checkpoint is .*ckpt-4$"):
        run.roll_back("again")  # max_rollbacks reached


def test_mixed_precision_keeps_chain_state_float32(digits16):
    import keras

    from hat_ebm_tf.data import array_dataset
    from tests.helpers import tiny_model

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

    from hat_ebm_tf.autoencoder import Autoencoder
    from hat_ebm_tf.config import load_config
    from hat_ebm_tf.model import HatEBM
    from hat_ebm_tf.training.train import build_model

    config = load_config(path)
    nets = dataclasses.replace(config.networks, hat_width=16, generator_width=16, latent_dim=8)
    config = dataclasses.replace(
        config, networks=nets, training=dataclasses.replace(config.training, bank_size=8, batch_size=4)
    )
    model = build_model(config, pretrained=False)
    size, channels = config.data.image_size, config.data.channels
    images = np.zeros((2, size, size, channels), "float32")
    if config.mode == "autoencoder":
        assert isinstance(model, Autoencoder) and model(images).shape == images.shape
        return
    assert isinstance(model, HatEBM) and model.mode.name == config.mode and model.sampler_config == config.sampler
    assert tuple(model.image_shape) == (size, size, channels) and model.bank_size == 8
    assert model.energy(images).shape == (2,)
    assert model.generate(np.zeros((2, *model.latent_shape), "float32")).shape == images.shape
