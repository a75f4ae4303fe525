"""Parity with the reference implementation's checkpoints and outputs (tests/fixtures/reference)."""

import numpy as np
import pytest
import tensorflow as tf

from hat_ebm_tf.networks import Generator, HatNetwork
from hat_ebm_tf.reference import (
    ReferenceCheckpointError,
    checkpoint_shapes,
    decoder_from_reference,
    encoder_from_reference,
    generator_from_reference,
    hat_from_reference,
    load_reference_weights,
    sampler_from_reference,
)
from hat_ebm_tf.rng import row_seeds
from hat_ebm_tf.sampler import langevin
from tests.helpers import FIXTURES, max_rel_error


@pytest.fixture(scope="module")
def nets32(fixtures):
    spec = fixtures["nets"]["32_ngf64"]
    hat = hat_from_reference(FIXTURES / spec["ebm"])
    gen = generator_from_reference(FIXTURES / spec["gen"], out_factor=spec["gen_out_factor"])
    return hat, gen


def test_inferred_architectures(nets32, fixtures):
    hat, gen = nets32
    spec = fixtures["nets"]["32_ngf64"]
    assert (hat.image_size, hat.width, hat.channels) == (32, spec["ngf"], spec["nch"])
    assert (gen.image_size, gen.width, gen.latent_dim) == (32, spec["ngf"], spec["nz"])


def test_forward_passes_match(nets32, fixtures, expected):
    hat, gen = nets32
    retro = fixtures["nets"]["retrofit32"]
    dec = decoder_from_reference(FIXTURES / retro["decoder"], out_factor=retro["gen_out_factor"])
    enc = encoder_from_reference(FIXTURES / retro["encoder"], normalize=retro["encoder_normalize"])
    errors = {
        "energy": max_rel_error(hat(expected["ebm32_ngf64_x"]), expected["ebm32_ngf64_energy"]),
        "generator": max_rel_error(gen(expected["gen32_ngf64_z"], training=False), expected["gen32_ngf64_images"]),
        "decoder": max_rel_error(dec(expected["dec_z"], training=False), expected["dec_images"]),
        "encoder": max_rel_error(enc(expected["enc_x"]), expected["enc_latents"]),
    }
    print("max relative errors:", errors)
    assert max(errors.values()) < 1e-5, errors


@pytest.mark.parametrize("case", ["synthesis", "joint"])
def test_langevin_trajectories_match(case, nets32, fixtures, expected):
    hat, gen = nets32
    name = f"lang32_ngf64_{case}"
    config = sampler_from_reference(fixtures["langevin"][name]["config"])
    z0, r0 = expected[f"{name}_z0"], expected[f"{name}_r0"]
    run = tf.function(lambda z, r: langevin(hat, lambda v: gen(v, training=False), z, r, row_seeds(0, len(z0)), config))
    out = run(z0, r0)
    errors = {
        key: max_rel_error(value, expected[f"{name}_{key}"])
        for key, value in {
            "z": out.latents,
            "r": out.residuals,
            "images": out.images,
            "grad_norm_res": out.grad_norm_res,
        }.items()
    }
    if config.update_latents:
        errors["grad_norm_latent"] = max_rel_error(out.grad_norm_latent, expected[f"{name}_grad_norm_latent"])
    else:
        assert float(out.grad_norm_latent) == 0.0 == float(expected[f"{name}_grad_norm_latent"])
    print(case, "max relative errors:", errors)
    assert max(errors.values()) < 1e-4, errors


def test_wrong_architecture_names_the_key_and_both_shapes(fixtures):
    path = FIXTURES / fixtures["nets"]["32_ngf64"]["ebm"]
    wrong = HatNetwork(image_size=32, width=32, channels=3)
    before = [w.numpy().copy() for w in wrong.weights]
    with pytest.raises(
        ReferenceCheckpointError,
        match=r"shape mismatch at conv_1/conv_1/kernel: checkpoint \[3, 3, 3, 64\] vs network \[3, 3, 3, 32\]",
    ):
        load_reference_weights(wrong, path)
    # Nothing was loaded partially.
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(before, wrong.weights, strict=True))


def test_missing_and_unused_variables_are_named(fixtures):
    gen_path = FIXTURES / fixtures["nets"]["32_ngf64"]["gen"]
    with pytest.raises(ReferenceCheckpointError, match="missing in checkpoint: block5/") as info:
        load_reference_weights(Generator(image_size=64, width=64, channels=3), gen_path)
    assert "unused checkpoint variable: bn_5/gamma" in str(info.value)


def test_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(ReferenceCheckpointError, match=r"cannot read reference checkpoint .*nothing\.ckpt"):
        checkpoint_shapes(tmp_path / "nothing.ckpt")


def test_corrupt_checkpoint_is_named(tmp_path, fixtures):
    name = fixtures["nets"]["32_ngf64"]["ebm"]
    (tmp_path / f"{name}.index").write_bytes((FIXTURES / f"{name}.index").read_bytes()[:40])
    with pytest.raises(ReferenceCheckpointError, match="cannot read reference checkpoint"):
        hat_from_reference(tmp_path / name)
