"""The SavedModel's signatures (``hat_ebm_tf.serving.signatures``): names, tensors, seeds, in-graph input checks.

Real SavedModels; ``saved_model_cli`` in a subprocess. TF Serving itself is not
installed: its runtime path (C++ ``Session::Run`` on the MetaGraph) is
exercised through ``tf.compat.v1.Session``.
"""

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import config_pb2

from hat_ebm_tf.sampler_config import LangevinConfig
from hat_ebm_tf.serving.savedmodel import export_model
from hat_ebm_tf.serving.signatures import MAX_SAMPLE_BATCH, build_serving_module
from tests.helpers import EXPECTED_SIGNATURES, call_signature, finish_process, start_process, tiny_images, tiny_model

SAVED_MODEL_CLI = Path(sys.executable).parent / "saved_model_cli"


def test_saved_model_cli_shows_the_signatures_and_runs_energy_on_an_npy_file(exported, tmp_path):
    images = tiny_images(5)
    np.save(tmp_path / "images.npy", images)
    show = start_process(SAVED_MODEL_CLI, "show", "--all", "--dir", exported.version, cwd=tmp_path)
    run = start_process(
        SAVED_MODEL_CLI, "run", "--dir", exported.version, "--tag_set", "serve", "--signature_def", "energy",
        "--inputs", "images=images.npy", "--outdir", "out", cwd=tmp_path,
    )  # fmt: skip
    found = {}
    for block in finish_process(show).split("signature_def['")[1:]:
        name = block.split("'", 1)[0]
        if name == "__saved_model_init_op":
            continue
        tensors = {
            kind: {
                key: (dtype, shape)
                for key, dtype, shape in re.findall(
                    rf"{kind}\['(\w+)'\] tensor_info:\s+dtype: (\w+)\s+shape: (\([-\d, ]*\))", block
                )
            }
            for kind in ("inputs", "outputs")
        }
        assert "Method name is: tensorflow/serving/predict" in block, name
        found[name] = (tensors["inputs"], tensors["outputs"])
    assert found == EXPECTED_SIGNATURES
    finish_process(run)
    np.testing.assert_allclose(np.load(tmp_path / "out" / "energy.npy"), exported.model.energy(images), rtol=1e-6)


def test_sample_is_the_same_for_a_seed_in_any_batch_split(exported):
    seeds = np.array([11, -3, 2**40, 0, 7, 7, 123456789, 5, 9, 1], np.int64)
    whole = call_signature(exported.loaded, "sample", seeds=seeds)["images"]
    splits = [(0, 1), (1, 4), (4, 5), (5, 10)]
    parts = np.concatenate([call_signature(exported.loaded, "sample", seeds=seeds[a:b])["images"] for a, b in splits])
    reverse = call_signature(exported.loaded, "sample", seeds=seeds[::-1].copy())["images"][::-1]
    in_process = exported.model.sample_with_seeds(np.stack([np.zeros_like(seeds), seeds], axis=1))
    # The sampler's randomness is a function of each row's seed alone (integer
    # hashing, exact). What remains is float round-off of the same arithmetic
    # run at another batch size: Eigen evaluates log/sin/cos (Box-Muller) in
    # SIMD packets except for a tensor's last elements, and the matmuls' and
    # oneDNN convs' blocking depends on the batch size and on the CPU. The
    # chain's gradient steps amplify that round-off: 4e-7 at most on an AMD
    # EPYC (AVX2), 1.9e-5 on a CI host. A wrong seeding moves a row by O(1):
    # here distinct seeds differ by 0.4 or more, 400x the tolerance.
    for other in (parts, reverse, in_process):
        np.testing.assert_allclose(other, whole, rtol=0, atol=1e-3)
    np.testing.assert_array_equal(whole[4], whole[5])  # seed 7 twice in one batch
    distinct = [(i, j) for i in range(len(seeds)) for j in range(i) if seeds[i] != seeds[j]]
    assert min(np.abs(whole[i] - whole[j]).max() for i, j in distinct) > 0.1


# ----------------------------------------------------------- in-graph checks
IMAGES_MESSAGE = "energy: images must be a rank-4 float32 [B, 16, 16, 1] tensor; received shape]"
RANGE_MESSAGE = "must hold values in [-1, 1] (send raw uint8 pixels to energy_uint8); received min, max =] [255] [255]"
MALFORMED = {
    "size": ("energy", {"images": np.zeros((2, 8, 8, 1), np.float32)}, f"{IMAGES_MESSAGE} [2 8 8 1]"),
    "channels": ("energy", {"images": np.zeros((2, 16, 16, 3), np.float32)}, f"{IMAGES_MESSAGE} [2 16 16 3]"),
    "no batch": ("energy", {"images": np.zeros((16, 16, 1), np.float32)}, f"{IMAGES_MESSAGE} [16 16 1]"),
    "rank 5": (
        "energy",
        {"images": np.zeros((2, 16, 16, 1, 1), np.float32)},
        "[2,16,16,1,1] is not compatible with expected shape [?,16,16,1]",
    ),
    "dtype": (
        "energy",
        {"images": np.zeros((2, 16, 16, 1), np.float64)},
        "expected to be a float tensor but is a double tensor",
    ),
    "pixels as floats": ("energy", {"images": np.full((2, 16, 16, 1), 255.0, np.float32)}, RANGE_MESSAGE),
    "nan": (
        "ood_score",
        {"images": np.full((1, 16, 16, 1), np.nan, np.float32)},
        "ood_score: images must hold values in [-1, 1]",
    ),
    "uint8 channels": (
        "ood_score_uint8",
        {"images": np.zeros((2, 16, 16, 3), np.uint8)},
        "ood_score_uint8: images must be a rank-4 uint8 [B, 16, 16, 1] tensor; received shape] [2 16 16 3]",
    ),
    "seed pairs": ("sample", {"seeds": np.zeros((3, 2), np.int64)}, "[3,2] is not compatible with expected shape [?]"),
    "a scalar seed": (
        "sample",
        {"seeds": np.int64(3)},
        "sample: seeds must be a rank-1 int64 [B] tensor; received shape] []",
    ),
    "more seeds than the cap": (
        "sample",
        {"seeds": np.arange(MAX_SAMPLE_BATCH + 1, dtype=np.int64)},
        f"sample: seeds must hold at most {MAX_SAMPLE_BATCH} rows, one image each (send more as several requests); "
        f"received shape] [{MAX_SAMPLE_BATCH + 1}]",
    ),
    "more refine rows than the cap": (
        "refine",
        {"latents": np.zeros((MAX_SAMPLE_BATCH + 1, 4), np.float32), "seeds": np.zeros(MAX_SAMPLE_BATCH + 1, np.int64)},
        f"refine: seeds must hold at most {MAX_SAMPLE_BATCH} rows",
    ),
    "int32 seeds": ("sample", {"seeds": np.zeros(3, np.int32)}, "expected to be a int64 tensor but is a int32 tensor"),
    "latent size": (
        "generate",
        {"latents": np.zeros((3, 5), np.float32)},
        "generate: latents must be a rank-2 float32 [B, 4] tensor; received shape] [3 5]",
    ),
    "batch mismatch": (
        "refine",
        {"latents": np.zeros((3, 4), np.float32), "seeds": np.zeros(2, np.int64)},
        "refine: latents and seeds must have the same batch size; received] [3] [2]",
    ),
    "inf latents": (
        "refine",
        {"latents": np.full((2, 4), np.inf, np.float32), "seeds": np.zeros(2, np.int64)},
        "refine: latents must be finite",
    ),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_input_gets_a_named_error(exported, case):
    signature, inputs, message = MALFORMED[case]
    with pytest.raises(tf.errors.InvalidArgumentError) as error:
        call_signature(exported.loaded, signature, **{k: tf.constant(v) for k, v in inputs.items()})
    assert message in str(error.value)


def test_malformed_input_fails_in_the_serving_runtime(exported):
    """TF Serving feeds the MetaGraph's placeholders through C++ ``Session::Run``, which checks no shape.

    ``Session.run`` would refuse the shapes in Python first; a callable made
    from ``CallableOptions`` feeds them as TF Serving does.
    """
    tf1 = tf.compat.v1
    with tf.Graph().as_default() as graph, tf1.Session(graph=graph) as session:
        meta = tf1.saved_model.loader.load(session, ["serve"], str(exported.version))
        signature = meta.signature_def["energy"]
        options = config_pb2.CallableOptions(
            feed=[signature.inputs["images"].name], fetch=[signature.outputs["energy"].name]
        )
        energy = session._make_callable_from_options(options)
        assert energy(tiny_images(2))[0].shape == (2,)
        for images, message in [
            (np.zeros((2, 8, 8, 1), np.float32), "a rank-4 float32 [B, 16, 16, 1] tensor; received shape] [2 8 8 1]"),
            (np.zeros((16, 16, 1), np.float32), "received shape] [16 16 1]"),
            (
                np.zeros((2, 16, 16, 1, 1), np.float32),
                "[2,16,16,1,1] is not compatible with expected shape [?,16,16,1]",
            ),
            (np.zeros((2, 16, 16, 1), np.int64), "Type mismatch: actual int64 vs. expect float"),
        ]:
            with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(message)):
                energy(images)


def test_every_signature_refuses_an_empty_batch_by_name(tmp_path):
    path = export_model(tiny_model(), tmp_path, "tiny")
    loaded = tf.saved_model.load(str(path))
    for name, function in loaded.signatures.items():
        specs = function.structured_input_signature[1]
        empty = {key: tf.zeros([0, *spec.shape[1:]], spec.dtype) for key, spec in specs.items()}
        signature = "ood_score" if name == "serving_default" else name
        with pytest.raises(tf.errors.InvalidArgumentError, match=rf"{signature}: \w+ must hold at least one row"):
            function(**empty)


# --------------------------------------------------------- the baked sampler
def test_a_keras_file_exports_its_own_sampler(exported):
    [row] = call_signature(exported.loaded, "sampler_config", seeds=np.zeros(1, np.int64))["json"]
    assert LangevinConfig.from_dict(json.loads(row)) == exported.model.sampler_config


def test_the_save_traces_each_signature_once_and_keeps_only_the_networks_variables(tmp_path):
    model = tiny_model("refine")
    module, signatures = build_serving_module(model)
    tf.saved_model.save(module, str(tmp_path / "saved"), signatures=signatures)
    # A function traced before the save is traced again inside it: the whole sampler twice.
    counts = {name: function.experimental_get_tracing_count() for name, function in signatures.items()}
    assert counts == dict.fromkeys(signatures, 1)
    saved = [name for name, _ in tf.train.list_variables(str(tmp_path / "saved" / "variables" / "variables"))]
    assert len([name for name in saved if name.startswith("serving_variables/")]) == len(model.hat.weights) + len(
        model.generator.weights
    )
    assert not [name for name in saved if "bank" in name or "optimizer" in name]
