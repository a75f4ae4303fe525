"""The mixed-precision policy choice, and networks that take a mixed policy in every layer."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from hat_ebm_tf.networks import Generator, HatNetwork, RetrofitDecoder, RetrofitEncoder
from hat_ebm_tf.precision import cpu_info, global_policy, native_policy, resolve_policy

NO_GPU = not tf.config.list_physical_devices("GPU")


def test_cpu_info_reads_the_first_cpu(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text("processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu avx2 amx_bf16\n\nflags\t: sse\n")
    assert cpu_info(path) == ("Some CPU", frozenset({"fpu", "avx2", "amx_bf16"}))
    assert cpu_info(tmp_path / "absent") == ("unknown", frozenset())


@pytest.mark.skipif(not NO_GPU, reason="a GPU decides the policy before the CPU flags")
@pytest.mark.parametrize(
    ("flags", "policy"),
    [
        ({"avx2", "fma"}, "float32"),
        ({"avx512f"}, "float32"),
        ({"avx512_bf16"}, "mixed_bfloat16"),
        ({"amx_bf16"}, "mixed_bfloat16"),
    ],
)
def test_auto_is_bfloat16_only_where_the_cpu_runs_it_natively(flags, policy):
    assert native_policy(flags)[0] == policy


def test_auto_resolves_to_this_machines_native_policy_and_names_pass_through():
    assert resolve_policy("auto") == native_policy()[0]
    assert resolve_policy() == resolve_policy("auto")
    for name in ("float32", "mixed_bfloat16", "mixed_float16"):
        assert resolve_policy(name) == name
    with pytest.raises(ValueError, match="'bfloat16': expected one of"):
        resolve_policy("bfloat16")


@pytest.mark.parametrize(
    "make",
    [
        lambda dtype: HatNetwork(16, 8, 3, dtype=dtype),
        lambda dtype: Generator(16, 8, 3, latent_dim=8, dtype=dtype),
        lambda dtype: RetrofitDecoder(width=8, latent_shape=(8, 8, 1), dtype=dtype),
        lambda dtype: RetrofitEncoder(width=8, image_size=16, dtype=dtype),
    ],
)
def test_a_mixed_network_computes_every_layer_in_bfloat16(make, tmp_path):
    net = make("mixed_bfloat16")
    layers = [layer for layer in net._flatten_layers(include_self=False) if layer.weights]
    energy_head = [layer for layer in layers if getattr(net, "head", None) is layer]
    assert layers and all(layer.compute_dtype == "bfloat16" for layer in layers if layer not in energy_head)
    # The hat's energies stay float32 (the sampler sums them into its gradient).
    assert [layer.compute_dtype for layer in energy_head] == (["float32"] if hasattr(net, "head") else [])
    assert all(weight.dtype == "float32" for weight in net.weights)
    shape = (2, *(net.latent_shape if hasattr(net, "latent_shape") else (net.image_size, net.image_size, 3)))
    out = net(np.random.default_rng(0).standard_normal(shape).astype("float32"))
    assert out.dtype == ("float32" if energy_head else "bfloat16")
    path = tmp_path / "net.keras"
    net.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.dtype_policy.name == "mixed_bfloat16" and loaded.blocks[0].conv_1.compute_dtype == "bfloat16"


def test_global_policy_is_the_runs_inside_and_the_callers_after_even_on_an_error():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        with pytest.raises(RuntimeError, match="inside"), global_policy("mixed_bfloat16"):
            assert HatNetwork(16, 8, 1).compute_dtype == "bfloat16"
            raise RuntimeError("inside")
        assert keras.mixed_precision.global_policy().name == "mixed_float16"
    finally:
        keras.mixed_precision.set_global_policy("float32")
