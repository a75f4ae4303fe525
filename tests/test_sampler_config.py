"""``LangevinConfig`` (hat_ebm_tf.sampler_config): validated settings, unknown keys refused, no TensorFlow."""

import dataclasses
import subprocess
import sys

import pytest

from hat_ebm_tf.sampler_config import JOINT_LATENT_STEP_SIZE, LangevinConfig


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("num_steps", -1, "num_steps=-1"),
        ("step_size", 0.0, "step_size=0.0"),
        ("temperature", -1.0, "temperature=-1.0"),
        ("max_residual_norm", 0.0, "max_residual_norm=0.0"),
        ("tau", -0.5, "tau=-0.5"),
    ],
)
def test_bad_sampler_values_are_named(field, value, match):
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(LangevinConfig(), **{field: value})


def test_unknown_sampler_keys_are_rejected():
    with pytest.raises(ValueError, match="unknown keys \\['epsilon'\\]"):
        LangevinConfig.from_dict({"epsilon": 0.1})
    with pytest.raises(ValueError, match="latent_step_size > 0"):
        LangevinConfig(update_latents=True, latent_step_size=0.0)


def test_the_joint_form_takes_the_named_latent_step():
    assert LangevinConfig.for_form(True).latent_step_size == JOINT_LATENT_STEP_SIZE
    assert LangevinConfig.for_form(False, num_steps=3) == LangevinConfig(num_steps=3)


def test_the_settings_import_without_tensorflow():
    # The command line builds its sampler flags from these fields: `hat-ebm --help` must not pay for TensorFlow.
    code = "import sys, hat_ebm_tf.sampler_config; assert 'tensorflow' not in sys.modules, 'tensorflow imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
