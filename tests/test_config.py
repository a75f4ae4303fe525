import json

import pytest
import yaml

from hat_ebm_tf.sampler import LangevinConfig
from training.config import CONFIG_DIR, ConfigError, evaluation_sampler, load_config, parse_config


def test_digits_config_loads_by_name():
    config = load_config("digits")
    assert config.mode == "synthesis" and config.data.source == "digits" and config.data.image_size == 16
    assert config.evaluation.num_samples >= 500


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_config_validates(path):
    assert load_config(path).name


def _digits():
    return yaml.safe_load((CONFIG_DIR / "digits.yaml").read_text())


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda c: c.update(learning_rate=1), r"unknown keys \['learning_rate'\]"),
        (lambda c: c["training"].update(lr=1), r"training: unknown keys \['lr'\]"),
        (lambda c: c["sampler"].update(epsilon=1), r"sampler: unknown keys \['epsilon'\]"),
        (lambda c: c.update(mode="joint"), "mode='joint'"),
        (lambda c: c["training"].update(batch_size=0), "training.batch_size=0"),
        (lambda c: c["sampler"].update(step_size=-1.0), "step_size=-1.0"),
        (lambda c: c["data"].update(source="mnist"), "data: data source 'mnist'"),
        (lambda c: c["data"].update(source="tfds:mnist"), "tfds builder name='mnist'"),
        (
            lambda c: c.update(evaluation={"sampler": {"num_step": 5}}),
            r"evaluation.sampler: unknown keys \['num_step'\]",
        ),
    ],
)
def test_bad_configs_are_named(edit, match):
    values = _digits()
    edit(values)
    with pytest.raises(ConfigError, match=match):
        parse_config(values)


def test_evaluation_sampler_overrides_the_training_sampler():
    values = _digits()
    values["evaluation"] = {"sampler": {"num_steps": 25, "init_scale_residual": 0.01}}
    config = parse_config(values)
    assert config.evaluation.sampler.num_steps == 25 and config.evaluation.sampler.step_size == config.sampler.step_size


def test_a_runs_evaluation_sampler_applies_its_overrides_to_the_models_sampler(tmp_path):
    trained = LangevinConfig(num_steps=4, step_size=0.01, max_residual_norm=1.0)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"evaluation": {"sampler": {"num_steps": 9, "max_residual_norm": None}}}))
    assert evaluation_sampler(path, trained) == LangevinConfig(num_steps=9, step_size=0.01, max_residual_norm=None)
    path.write_text(yaml.safe_dump({"evaluation": {"num_samples": 5}}))
    assert evaluation_sampler(path, trained) == trained
    path.write_text(yaml.safe_dump({"evaluation": {"sampler": {"num_step": 9}}}))
    with pytest.raises(ConfigError, match=r"config.yaml: evaluation.sampler: unknown keys \['num_step'\]"):
        evaluation_sampler(path, trained)


def test_json_configs_and_file_errors(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(_digits()))
    assert load_config(path).name == "digits"
    (tmp_path / "bad.yaml").write_text("mode: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match="not found; shipped configs are"):
        load_config(tmp_path / "absent.yaml")
    (tmp_path / "code.yaml").write_text("!!python/object/apply:os.system ['true']")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "code.yaml")
