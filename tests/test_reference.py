"""Parity with the reference implementation's checkpoints and outputs (tests/fixtures/reference)."""

import json
import os
from pathlib import Path

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
from hat_ebm_tf.sampler import langevin, row_seeds

# Shipped with the tests (3.5 MB; see fixtures/reference/README.md), so that parity is checked on every clone.
FIXTURES = Path(os.environ.get("HAT_EBM_REFERENCE_FIXTURES", Path(__file__).resolve().parent / "fixtures/reference"))


@pytest.fixture(scope="module")
def expected():
    return dict(np.load(FIXTURES / "expected.npz"))


@pytest.fixture(scope="module")
def fixtures():
    return json.loads((FIXTURES / "fixtures.json").read_text())


def max_rel_error(actual, desired):
    actual, desired = np.asarray(actual, np.float64), np.asarray(desired, np.float64)
    return float(np.max(np.abs(actual - desired)) / max(np.max(np.abs(desired)), 1e-30))


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


def test_import_reference_cli_to_samples(tmp_path, fixtures, expected):
    import keras

    from tests.helpers import hat_ebm

    spec = fixtures["nets"]["32_ngf64"]
    args = ["--hat", FIXTURES / spec["ebm"], "--generator", FIXTURES / spec["gen"], "--mode", "synthesis"]
    result = hat_ebm("import-reference", *args, "--image-size", 32, "--run-dir", "run", "--steps", 2, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    model = keras.saving.load_model(tmp_path / "run" / "model.keras")
    rel = max_rel_error(model.energy(expected["ebm32_ngf64_x"]), expected["ebm32_ngf64_energy"][:, 0])
    assert rel < 1e-5 and model.sampler_config.num_steps == 2
    result = hat_ebm("sample", "run", "--num", 3, "--out", "s.npz", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert np.load(tmp_path / "s.npz")["images"].shape == (3, 32, 32, 3)

    retro = fixtures["nets"]["retrofit32"]
    args = [
        "--hat",
        FIXTURES / spec["ebm"],
        "--decoder",
        FIXTURES / retro["decoder"],
        "--encoder",
        FIXTURES / retro["encoder"],
    ]
    result = hat_ebm(
        "import-reference", *args, "--mode", "retrofit", "--image-size", 32, "--run-dir", "retro", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "retro" / "autoencoder.keras").is_file()


def test_import_reference_cli_names_mismatches(tmp_path, fixtures):
    from tests.helpers import hat_ebm

    spec = fixtures["nets"]["32_ngf64"]
    args = ["--hat", FIXTURES / spec["ebm"], "--generator", FIXTURES / spec["gen"], "--mode", "synthesis"]
    result = hat_ebm("import-reference", *args, "--image-size", 64, "--run-dir", "run", cwd=tmp_path)
    assert result.returncode != 0 and "--image-size 64: the hat network checkpoint is for 32×32" in result.stderr
    result = hat_ebm(
        "import-reference",
        "--hat",
        FIXTURES / spec["gen"],
        "--generator",
        FIXTURES / spec["gen"],
        "--mode",
        "synthesis",
        "--image-size",
        32,
        "--run-dir",
        "run",
        cwd=tmp_path,
    )
    assert result.returncode != 0 and "no variable 'lin_5/kernel', so it is not a hat network" in result.stderr
