"""A run directory's paths and readers (``hat_ebm_tf.run_dir``): its model and its evaluation sampler."""

import dataclasses
import shutil

import pytest
import yaml

from hat_ebm_tf.errors import ModelFileError
from hat_ebm_tf.model import HatEBM
from hat_ebm_tf.run_dir import RunDir


def test_paths_by_their_public_names(tmp_path):
    (tmp_path / "run").mkdir()
    assert RunDir.model_file(tmp_path / "run") == tmp_path / "run" / "model.keras"
    assert RunDir.model_file(tmp_path / "any.keras") == tmp_path / "any.keras"
    worker = RunDir(tmp_path / "run").worker(2)
    assert isinstance(worker, RunDir) and worker.path == tmp_path / "run" / "workers" / "2"


def test_the_model_loads_from_a_run_directory_or_a_keras_file(models, tmp_path):
    (tmp_path / "run").mkdir()
    shutil.copy(models / "tiny.keras", tmp_path / "run" / RunDir.MODEL)
    for path in (models / "tiny.keras", tmp_path / "run", str(tmp_path / "run")):
        model = RunDir.load_model(path)
        assert isinstance(model, HatEBM) and tuple(model.image_shape) == (16, 16, 1)


def test_a_model_that_cannot_be_loaded_is_named(models, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelFileError, match=r"no trained model at .*empty/model\.keras' \(expected a run directory"):
        RunDir.load_model(tmp_path / "empty")
    (tmp_path / "broken.keras").write_bytes(b"not a zip file")
    with pytest.raises(ModelFileError, match=r"cannot load .*broken\.keras'"):
        RunDir.load_model(tmp_path / "broken.keras")
    with pytest.raises(ModelFileError, match=r"other\.keras' holds a Sequential, not a HatEBM"):
        RunDir.load_model(models / "other.keras")


def test_the_evaluation_sampler_is_the_runs_config_over_the_models_sampler(models, tmp_path):
    model = RunDir.load_model(models / "tiny.keras")
    assert RunDir.evaluation_sampler(models / "tiny.keras", model) == model.sampler_config
    run = tmp_path / "run"
    run.mkdir()
    assert RunDir.evaluation_sampler(run, model) == model.sampler_config  # an imported run: no config.yaml
    (run / RunDir.CONFIG).write_text(yaml.safe_dump({"evaluation": {"sampler": {"num_steps": 9, "tau": 0.5}}}))
    expected = dataclasses.replace(model.sampler_config, num_steps=9, tau=0.5)
    assert expected != model.sampler_config and RunDir.evaluation_sampler(run, model) == expected
