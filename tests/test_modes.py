"""``hat_ebm_tf.modes``: one ``Mode`` per training mode, looked up by name, and the mode/sampler rule."""

import pytest

from hat_ebm_tf.errors import ConfigError
from hat_ebm_tf.modes import HAT_EBM_MODES, MODES, get_mode
from hat_ebm_tf.sampler_config import LangevinConfig


def test_each_mode_says_what_it_samples_trains_and_keeps():
    synthesis, refine, retrofit, autoencoder = (get_mode(name) for name in MODES)
    assert [m.name for m in (synthesis, refine, retrofit, autoencoder)] == [
        "synthesis",
        "refine",
        "retrofit",
        "autoencoder",
    ]
    assert HAT_EBM_MODES == ("synthesis", "refine", "retrofit")
    assert not synthesis.joint and synthesis.trains_generator and synthesis.uses_banks
    assert refine.joint and retrofit.joint and not refine.trains_generator and not retrofit.uses_banks
    assert [m.generator for m in (synthesis, refine, retrofit, autoencoder)] == ["sngan", "sngan", "decoder", "decoder"]
    assert not autoencoder.hat_ebm and autoencoder.trains_generator
    assert refine.out_factor == 1.0 and synthesis.out_factor == retrofit.out_factor == 2.0


def test_an_unknown_mode_is_named_with_the_known_ones():
    with pytest.raises(ConfigError, match=r"^unknown mode='joint'; expected one of \['synthesis', .*'autoencoder'\]$"):
        get_mode("joint")
    with pytest.raises(ConfigError, match=r"^HatEBM: unknown mode='autoencoder'; expected one of \['synthesis', "):
        get_mode("autoencoder", hat_ebm=True, where="HatEBM")


def test_a_hat_ebm_mode_needs_the_sampler_of_its_form():
    joint = LangevinConfig.for_form(joint=True)
    get_mode("refine").check_sampler(joint)
    get_mode("autoencoder").check_sampler(joint)  # no sampler runs in this mode
    with pytest.raises(ConfigError, match=r"^HatEBM: mode='synthesis' needs sampler.update_latents=False "):
        get_mode("synthesis").check_sampler(joint, "HatEBM")
    with pytest.raises(ConfigError, match=r"^mode='retrofit' needs sampler.update_latents=True "):
        get_mode("retrofit").check_sampler(LangevinConfig())
