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
