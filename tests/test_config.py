import json

import numpy as np
import pytest
import yaml

from hat_ebm_tf.config import CONFIG_DIR, ConfigError, evaluation_sampler, load_config, parse_config
from hat_ebm_tf.sampler_config import LangevinConfig


def test_digits_config_loads_by_name():
    config = load_config("digits")
    assert config.mode == "synthesis" and config.data.source == "digits" and config.data.image_size == 16
    assert config.evaluation.num_samples >= 500


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_config_validates(path):
    config = load_config(path)
    # Each file names its experiment (`name` has a default, so a missing or misspelt key would go unseen),
    # and the validated config reads back as itself from the config.yaml a run writes.
    assert yaml.safe_load(path.read_text())["name"] == config.name == path.stem
    assert parse_config(yaml.safe_load(yaml.safe_dump(config.to_dict()))) == config


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


@pytest.mark.parametrize(
    ("section", "key", "value", "match"),
    [
        ("training", "steps", True, r"steps=True must be an integer"),  # YAML `true` is no integer
        ("training", "steps", 2**70, "beyond the int64 range"),
        ("training", "gen_loss_factor", -1.0, r"gen_loss_factor=-1.0 must be >= 0 and finite"),
        ("training", "max_energy_gap", -1, r"max_energy_gap=-1 must be > 0 and finite, or null"),
        ("training", "max_energy_gap", 0, r"max_energy_gap=0 must be > 0 and finite"),
        ("training", "data_epsilon", float("nan"), r"data_epsilon=nan must be finite"),
        ("training", "hat_learning_rate", float("inf"), r"hat_learning_rate=inf must be finite"),
        ("training", "hat_learning_rate", [[True, 0]], "must hold numbers, not true/false"),
        ("sampler", "temperature", float("inf"), r"temperature=inf must be finite"),
        ("sampler", "num_steps", True, r"num_steps=True must be an integer"),
        ("sampler", "noise", "yes", r"noise='yes' must be true or false"),
        ("networks", "out_factor", "abc", r"out_factor='abc' must be a number"),
        ("data", "source", 123, r"source=123 must be a string"),
        ("data", "image_size", 17, r"data.image_size=17: the networks support \[16, 32, 64, 128\]"),
    ],
)
def test_bad_values_are_refused_at_load(section, key, value, match):
    values = _digits()
    values[section][key] = value
    with pytest.raises(ConfigError, match=match):
        parse_config(values)


@pytest.mark.parametrize("seed", [True, -1, 2**32, 10**20, 1.5])
def test_seeds_are_integers_numpy_can_take(seed):
    values = _digits()
    values["seed"] = seed
    with pytest.raises(ConfigError, match=r"seed=.* must be an integer in \[0, 4294967295\]"):
        parse_config(values)


def test_sizes_beyond_the_limits_are_refused_until_the_limits_are_raised():
    from hat_ebm_tf.errors import LimitError

    values = _digits()
    values["training"]["bank_size"] = 10**12
    with pytest.raises(LimitError, match=r"persistent banks \(training.bank_size=1000000000000\): 1.15e\+06 GB"):
        parse_config(values)
    values = _digits()
    values["networks"]["hat_width"] = 4_000_000
    with pytest.raises(LimitError, match=r"networks.hat_width=4000000 exceeds limits.width=4096"):
        parse_config(values)
    values["limits"] = {"width": 4_000_000, "memory_gb": 1e9}
    assert parse_config(values).networks.hat_width == 4_000_000


def test_yaml_aliases_and_huge_files_are_refused_at_once(tmp_path):
    # 9 levels of 9 aliases: 9**9 strings once expanded, from about 800 bytes.
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    (tmp_path / "bomb.yaml").write_text("\n".join([*lines, "data: {source: *a8}"]) + "\n")
    with pytest.raises(ConfigError, match=r"line 2: YAML aliases \(\*name\) are not allowed"):
        load_config(tmp_path / "bomb.yaml")  # at the first alias, before anything is expanded
    (tmp_path / "huge.yaml").write_text("# padding\n" * 200_000)
    with pytest.raises(ConfigError, match="a config is at most 1048576"):
        load_config(tmp_path / "huge.yaml")


def test_quality_during_training_is_for_hat_ebm_runs_of_any_source(tmp_path):
    values = _digits()
    assert parse_config(values).evaluation.every is not None  # the shipped digits config records it
    values["evaluation"]["every"] = 0
    with pytest.raises(ConfigError, match=r"evaluation.every=0 must be a positive integer or null"):
        parse_config(values)
    values["evaluation"].update(every=10, quality_samples=1)
    with pytest.raises(ConfigError, match=r"evaluation.quality_samples=1 must be an integer >= 2"):
        parse_config(values)
    np.save(tmp_path / "images.npy", np.zeros((8, 16, 16, 1), np.uint8))
    values = _digits()
    values["data"]["source"] = str(tmp_path / "images.npy")
    assert parse_config(values).evaluation.every == 500  # the report knows any data set
    autoencoder = load_config("digits_ae").to_dict()
    autoencoder["evaluation"].update(every=10, sampler=None)
    with pytest.raises(ConfigError, match=r"evaluation.every=10 scores a Hat EBM's samples; mode 'autoencoder'"):
        parse_config(autoencoder)
    values = _digits()
    for source in ("digits:held_out", "glyphs:held_out", "photo-patches:held_out[:10]"):
        values["data"]["source"] = source
        with pytest.raises(ConfigError, match=r"training never sees the held-out images"):
            parse_config(values)
    values["data"]["source"] = "digits:all"  # every tenth image is then held out
    assert parse_config(values).data.to_source().train_and_held_out()[1].hold_out == "held_out"


@pytest.mark.parametrize(
    ("section", "key", "value", "match"),
    [
        ("sampler", "temperature", 1e-50, r"sampler: LangevinConfig: temperature=1e-50 vanishes in float32"),
        ("sampler", "step_size", 1e-300, r"step_size=1e-300 vanishes in float32"),
        ("sampler", "tau", 1e-40, r"tau=1e-40 vanishes in float32"),  # subnormal: flushed to 0 by TensorFlow
        ("sampler", "max_residual_norm", 1e39, r"max_residual_norm=1e\+39 is infinite in float32"),
        ("training", "data_epsilon", 1e-45, r"training.data_epsilon=1e-45 vanishes in float32"),
        ("training", "max_energy_gap", 1e-50, r"training.max_energy_gap=1e-50 vanishes in float32.*, or null"),
        ("training", "hat_learning_rate", 1e-50, r"training.hat_learning_rate=1e-50 vanishes in float32"),
        ("training", "generator_learning_rate", [[1e-3, 0], [1e-50, 9]], r"rate from step 9=1e-50 vanishes"),
        ("training", "ema_momentum", 1e-50, r"training.ema_momentum=1e-50 vanishes in float32"),
        ("training", "rollback_lr_factor", 1e-50, r"training.rollback_lr_factor=1e-50 vanishes in float32"),
        ("networks", "out_factor", 1e-50, r"networks.out_factor=1e-50 vanishes in float32"),
        ("limits", "memory_gb", 1e-50, r"limits.memory_gb=1e-50 vanishes in float32"),
        ("data", "random_crop", [1e-50, 1.0, 1.0, 1.0], r"random_crop=.* none below float32's smallest normal"),
        ("evaluation", "sampler", {"temperature": 1e-300}, r"evaluation.sampler: .*temperature=1e-300 vanishes"),
    ],
)
def test_positive_settings_that_vanish_or_overflow_in_float32_are_refused(section, key, value, match):
    values = _digits()
    values.setdefault(section, {})[key] = value
    with pytest.raises(ConfigError, match=match):
        parse_config(values)


def test_float32_settings_at_the_edge_and_zero_where_allowed_are_taken():
    values = _digits()
    values["sampler"].update(temperature=1e-30, tau=0.0, init_scale_residual=0)
    values["training"]["data_epsilon"] = 0
    config = parse_config(values)
    assert config.sampler.temperature == 1e-30 and config.sampler.tau == 0 and config.training.data_epsilon == 0


def test_a_bank_smaller_than_the_batch_is_refused_at_load():
    values = _digits()
    values["training"].update(bank_size=8, batch_size=32)
    with pytest.raises(ConfigError, match=r"training.bank_size=8 is smaller than training.batch_size=32"):
        parse_config(values)
    values = yaml.safe_load((CONFIG_DIR / "digits_ae.yaml").read_text())  # no banks: the size is unused
    values["training"].update(bank_size=8, batch_size=32)
    assert parse_config(values).training.bank_size == 8
