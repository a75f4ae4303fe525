"""The recipe of ``hat-ebm train --data`` (``hat_ebm_tf.recipe``): derived from the data's size, channels and count."""

import math

import numpy as np
import pytest
from PIL import Image

from hat_ebm_tf import recipe
from hat_ebm_tf.config import parse_config
from hat_ebm_tf.errors import ConfigError, DataError


@pytest.mark.parametrize(
    ("spec", "native", "channels", "count"),
    [
        ("digits", 8, 1, 1000),
        ("digits:train[:200]", 8, 1, 200),
        ("digits:all", 8, 1, 1797 - 179),  # every tenth image is held out for the report
        ("glyphs", 32, 1, 5000),
        ("photo-patches:train[:300]", 32, 3, 300),
    ],
)
def test_the_facts_of_the_offline_sources(spec, native, channels, count):
    assert recipe.inspect_source(spec) == recipe.DataFacts(spec, native, channels, count)


def test_the_facts_of_files_come_from_their_headers(tmp_path):
    np.savez(tmp_path / "a.npz", images=np.zeros((25, 28, 30, 1), np.uint8))
    assert recipe.inspect_source(str(tmp_path / "a.npz")) == recipe.DataFacts(str(tmp_path / "a.npz"), 28, 1, 23)
    np.save(tmp_path / "b.npy", np.zeros((10, 40, 40, 3), np.uint8))
    assert recipe.inspect_source(str(tmp_path / "b.npy")).native_size == 40
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(12):
        Image.fromarray(np.zeros((64, 48, 3), np.uint8)).save(folder / f"{i}.png")
    assert recipe.inspect_source(str(folder)) == recipe.DataFacts(str(folder), 48, 3, 11)
    np.savez(tmp_path / "c.npz", pixels=np.zeros((2, 8, 8, 1), np.uint8))
    with pytest.raises(DataError, match="has no array 'images'"):
        recipe.inspect_source(str(tmp_path / "c.npz"))
    with pytest.raises(DataError, match="does not exist"):
        recipe.inspect_source(str(tmp_path / "none.npy"))


def test_the_recipe_scales_its_clip_with_the_image_and_regularises_the_drift():
    for facts, size, channels in [
        (recipe.DataFacts("digits", 8, 1, 1000), 16, 1),
        (recipe.DataFacts("glyphs", 32, 1, 5000), 32, 1),
        (recipe.DataFacts("photo-patches", 32, 3, 5000), 32, 3),
        (recipe.DataFacts("x.npy", 500, 3, 100), 32, 3),  # big images: the largest size for 2 CPU cores
    ]:
        config = parse_config(recipe.derive(facts))
        assert (config.data.image_size, config.data.channels) == (size, channels)
        clip = config.sampler.max_residual_norm
        assert clip == pytest.approx(math.sqrt(size * size * channels) / 16, abs=1e-3)  # 1/16 a pixel
        assert config.training.drift_target == pytest.approx(clip / 4, abs=1e-3) and config.training.drift_weight > 0
        assert config.evaluation.sampler is None  # evaluates with the chain it trained with
        assert config.training.on_divergence == "rollback" and config.training.bank_size >= 2000
    config = parse_config(recipe.derive(recipe.DataFacts("glyphs", 32, 1, 5000), 64, 3, steps=40, seed=7))
    assert (config.data.image_size, config.data.channels, config.training.steps, config.seed) == (64, 3, 40, 7)
    assert config.evaluation.every == 8 and config.training.steps_per_epoch == 4
    with pytest.raises(DataError, match=r"image size 24: the networks support \[16, 32, 64, 128\]"):
        recipe.derive(recipe.DataFacts("glyphs", 32, 1, 5000), image_size=24)


def test_a_config_can_start_from_the_recipe_and_override_single_keys():
    config = parse_config(
        {"base": "recipe", "data": {"source": "glyphs", "image_size": 16}, "training": {"steps": 90, "batch_size": 16}}
    )
    derived = parse_config(recipe.derive(recipe.inspect_source("glyphs"), 16, steps=90))
    assert config.training.batch_size == 16 and config.training.steps == 90
    assert config.sampler == derived.sampler and config.networks == derived.networks
    with pytest.raises(ConfigError, match=r"base='defaults': the one base is 'recipe'"):
        parse_config({"base": "defaults", "data": {"source": "glyphs"}})
    with pytest.raises(ConfigError, match=r"base: recipe derives the config from the data: give data\.source"):
        parse_config({"base": "recipe"})
    with pytest.raises(ConfigError, match=r"unknown keys \['stepz'\]"):
        parse_config({"base": "recipe", "data": {"source": "glyphs"}, "training": {"stepz": 3}})


def test_a_small_data_set_gets_more_data_noise_and_fewer_steps():
    small = parse_config(recipe.derive(recipe.DataFacts("digits:train[:200]", 8, 1, 200)))
    large = parse_config(recipe.derive(recipe.DataFacts("digits", 8, 1, 1000)))
    assert large.training.data_epsilon == recipe.DATA_EPSILON and large.training.steps == 2500
    # At 32×32 the budget is 5000 steps, but 1000 images get 80 passes of batch 32 (2500 steps), 5000 images all.
    assert parse_config(recipe.derive(recipe.DataFacts("digits", 8, 1, 1000), 32)).training.steps == 2500
    assert parse_config(recipe.derive(recipe.DataFacts("glyphs", 32, 1, 5000), 32)).training.steps == 5000
    assert small.training.data_epsilon == pytest.approx(recipe.DATA_EPSILON * math.sqrt(5), abs=1e-4)
    assert small.training.steps == 1000 and small.evaluation.every == 200
