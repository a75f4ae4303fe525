"""SavedModel export for TF Serving: layout, signatures, in-graph checks, and use without hat_ebm_tf.

Real SavedModels, real subprocesses (`hat-ebm`, `saved_model_cli`, a fresh
Python), real TF Serving protos (tensorflow-serving-api). TF Serving itself is
not installed: its runtime path (C++ ``Session::Run`` on the MetaGraph) is
exercised through ``tf.compat.v1.Session``.
"""

import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import keras
import numpy as np
import pytest
import tensorflow as tf
import yaml
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format, wrappers_pb2
from tensorflow.core.protobuf import config_pb2
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2
from tensorflow_serving.config import model_server_config_pb2

from hat_ebm_tf.data import model_range_to_uint8
from hat_ebm_tf.sampler import LangevinConfig
from hat_ebm_tf.serving.savedmodel import (
    BATCHING_PARAMETERS,
    MODELS_CONFIG,
    SAMPLER_CONFIG_FILE,
    WARMUP_FILE,
    export_model,
)
from hat_ebm_tf.serving.scoring import ood_metrics
from tests.helpers import HAT_EBM, SIGNAL_HOOK, hat_ebm, tiny_images, tiny_model

SAVED_MODEL_CLI = Path(sys.executable).parent / "saved_model_cli"
IMAGES = ("DT_FLOAT", "(-1, 16, 16, 1)")
# signature → (inputs, outputs), each name → (dtype, shape), as `saved_model_cli show` prints them.
EXPECTED_SIGNATURES = {
    "energy": ({"images": IMAGES}, {"energy": ("DT_FLOAT", "(-1)")}),
    "energy_uint8": ({"images": ("DT_UINT8", IMAGES[1])}, {"energy": ("DT_FLOAT", "(-1)")}),
    "ood_score": ({"images": IMAGES}, {"score": ("DT_FLOAT", "(-1)")}),
    "ood_score_uint8": ({"images": ("DT_UINT8", IMAGES[1])}, {"score": ("DT_FLOAT", "(-1)")}),
    "serving_default": ({"images": IMAGES}, {"score": ("DT_FLOAT", "(-1)")}),
    "sample": ({"seeds": ("DT_INT64", "(-1)")}, {"images": IMAGES}),
    "refine": ({"latents": ("DT_FLOAT", "(-1, 4)"), "seeds": ("DT_INT64", "(-1)")}, {"images": IMAGES}),
    "generate": ({"latents": ("DT_FLOAT", "(-1, 4)")}, {"images": IMAGES}),
    "sampler_config": ({"seeds": ("DT_INT64", "(-1)")}, {"json": ("DT_STRING", "(-1)")}),
}

# The stand-alone scoring client that a deployment copies next to its serving stack.
STANDALONE_CLIENT = Path(__file__).resolve().parents[1] / "export" / "hat_ebm_scoring.py"
# Runs in a fresh interpreter, beside a copy of the stand-alone client, where
# hat_ebm_tf cannot be imported: TensorFlow, NumPy and the client only.
FRESH_PROCESS = """
import sys

sys.modules["hat_ebm_tf"] = None  # `import hat_ebm_tf` (and of its subpackages) now raises ImportError

import numpy as np
import tensorflow as tf

from hat_ebm_scoring import load_scorer

model_dir, inputs, outputs = sys.argv[1:]
data = np.load(inputs)
loaded = tf.saved_model.load(model_dir + "/1")


def run(signature, output, **inputs):
    return loaded.signatures[signature](**{k: tf.constant(v) for k, v in inputs.items()})[output].numpy()


results = {
    "energy": run("energy", "energy", images=data["images"]),
    "energy_uint8": run("energy_uint8", "energy", images=data["pixels"]),
    "sample": run("sample", "images", seeds=data["seeds"]),
    "refine": run("refine", "images", latents=data["latents"], seeds=data["seeds"]),
    "generate": run("generate", "images", latents=data["latents"]),
    "scorer": load_scorer(model_dir)(data["images"]),
}
leaked = sorted(m for m in sys.modules if m.split(".")[0] == "hat_ebm_tf" and sys.modules[m] is not None)
assert not leaked, leaked
np.savez(outputs, **results)
"""


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return {**env, "TF_CPP_MIN_LOG_LEVEL": "2", **extra}


def _start(*command, cwd, **env):
    return subprocess.Popen(
        [str(c) for c in command], cwd=cwd, env=_env(**env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _finish(process):
    """The standard output of a subprocess that must succeed."""
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr[-3000:]
    return stdout


@pytest.fixture(scope="module")
def synthesis(tmp_path_factory):
    """A tiny synthesis-mode model (no refine signature; quicker to export), and its .keras file."""
    model = tiny_model()
    path = tmp_path_factory.mktemp("synthesis") / "synthesis.keras"
    model.save(path)
    return SimpleNamespace(model=model, keras_file=path)


def _call(loaded, signature, **inputs):
    return {k: v.numpy() for k, v in loaded.signatures[signature](**inputs).items()}


# --------------------------------------------------------------- the layout
def test_layout_config_files_and_warmup(exported):
    serving = exported.root / "serving"
    assert sorted(p.name for p in (serving / "tiny").iterdir()) == ["1"]  # no temporary left
    for name in ("saved_model.pb", "variables", WARMUP_FILE):
        assert (exported.version / name).exists(), name
    config = text_format.Parse((serving / MODELS_CONFIG).read_text(), model_server_config_pb2.ModelServerConfig())
    [entry] = config.model_config_list.config
    assert (entry.name, entry.base_path, entry.model_platform) == ("tiny", "/models/tiny", "tensorflow")
    batching = text_format.Parse((serving / BATCHING_PARAMETERS).read_text(), _batching_parameters())
    assert batching.max_batch_size.value > 0 and batching.num_batch_threads.value > 0


def _batching_parameters():
    """An empty TF Serving ``BatchingParameters`` (session_bundle_config.proto, not in tensorflow-serving-api)."""
    field = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(
        name="batching_parameters_test.proto", package="test", dependency=["google/protobuf/wrappers.proto"]
    )
    message = proto.message_type.add(name="BatchingParameters")
    wrapped = [("max_batch_size", "Int64"), ("batch_timeout_micros", "Int64"), ("max_enqueued_batches", "Int64")]
    wrapped += [("num_batch_threads", "Int64"), ("thread_pool_name", "String")]
    for number, (name, kind) in enumerate(wrapped, start=1):
        message.field.add(name=name, number=number, type=field.TYPE_MESSAGE, type_name=f".google.protobuf.{kind}Value")
    message.field.add(name="allowed_batch_sizes", number=6, type=field.TYPE_INT64, label=field.LABEL_REPEATED)
    message.field.add(name="pad_variable_length_inputs", number=7, type=field.TYPE_BOOL)
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("test.BatchingParameters"))()


def test_saved_model_cli_shows_the_signatures_and_runs_energy_on_an_npy_file(exported, tmp_path):
    images = tiny_images(5)
    np.save(tmp_path / "images.npy", images)
    show = _start(SAVED_MODEL_CLI, "show", "--all", "--dir", exported.version, cwd=tmp_path)
    run = _start(
        SAVED_MODEL_CLI, "run", "--dir", exported.version, "--tag_set", "serve", "--signature_def", "energy",
        "--inputs", "images=images.npy", "--outdir", "out", cwd=tmp_path,
    )  # fmt: skip
    found = {}
    for block in _finish(show).split("signature_def['")[1:]:
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
    _finish(run)
    np.testing.assert_allclose(np.load(tmp_path / "out" / "energy.npy"), exported.model.energy(images), rtol=1e-6)


# ------------------------------------------------------- use without the package
def test_standalone_client_without_hat_ebm_tf_matches_the_in_process_model(exported, tmp_path):
    model, images, seeds = exported.model, tiny_images(6), np.arange(6, dtype=np.int64)
    latents = np.random.default_rng(1).normal(size=(6, 4)).astype(np.float32)
    np.savez(tmp_path / "inputs.npz", images=images, pixels=model_range_to_uint8(images), seeds=seeds, latents=latents)
    (tmp_path / "fresh.py").write_text(FRESH_PROCESS)
    shutil.copy(STANDALONE_CLIENT, tmp_path / "hat_ebm_scoring.py")  # the file itself, not the link
    fresh = _start(sys.executable, "fresh.py", exported.version.parent, "inputs.npz", "outputs.npz", cwd=tmp_path)
    # Computed while the fresh process runs. Serving seed s is the in-process
    # row seed (0, s), so seeds 0..5 are the chains of model.sample(6, seed=0).
    energy = model.energy(images).numpy()
    expected = {
        "sample": model.sample(6, seed=0),
        "refine": model.refine(latents, seed=0).images,
        "generate": model.generate(latents),
    }
    _finish(fresh)
    out = np.load(tmp_path / "outputs.npz")
    # The same graph at the same batch size: bit for bit.
    for key, value in {"energy": energy, "scorer": energy, **expected}.items():
        np.testing.assert_array_equal(out[key], value, err_msg=key)
    # The graph may turn x / 127.5 into x * (1 / 127.5): 1-ulp pixel differences.
    np.testing.assert_allclose(out["energy_uint8"], energy, rtol=1e-6, atol=1e-7)


def test_sample_is_the_same_for_a_seed_in_any_batch_split(exported):
    seeds = np.array([11, -3, 2**40, 0, 7, 7, 123456789, 5, 9, 1], np.int64)
    whole = _call(exported.loaded, "sample", seeds=seeds)["images"]
    splits = [(0, 1), (1, 4), (4, 5), (5, 10)]
    parts = np.concatenate([_call(exported.loaded, "sample", seeds=seeds[a:b])["images"] for a, b in splits])
    reverse = _call(exported.loaded, "sample", seeds=seeds[::-1].copy())["images"][::-1]
    in_process = exported.model.sample_with_seeds(np.stack([np.zeros_like(seeds), seeds], axis=1))
    # The sampler's randomness is a function of each row's seed alone (integer
    # hashing, exact). What remains is float round-off of the same arithmetic
    # run at another batch size, ≤ 1 ulp per draw, not amplified over the
    # 3-step chains: Eigen evaluates log/sin/cos (Box-Muller) in SIMD packets
    # except for a tensor's last elements, which it evaluates in scalar code,
    # and the joint modes' latent gradient passes a matmul whose blocking
    # depends on the batch size. A wrong seeding would differ by O(1).
    for other in (parts, reverse, in_process):
        np.testing.assert_allclose(other, whole, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(whole[4], whole[5])  # seed 7 twice in one batch
    assert np.abs(whole[0] - whole[1]).max() > 1e-2


# ----------------------------------------------------------- in-graph checks
IMAGES_MESSAGE = "energy: images must be float32 [B, 16, 16, 1]; received shape]"
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
        "ood_score_uint8: images must be uint8 [B, 16, 16, 1]; received shape] [2 16 16 3]",
    ),
    "seed pairs": ("sample", {"seeds": np.zeros((3, 2), np.int64)}, "[3,2] is not compatible with expected shape [?]"),
    "int32 seeds": ("sample", {"seeds": np.zeros(3, np.int32)}, "expected to be a int64 tensor but is a int32 tensor"),
    "latent size": (
        "generate",
        {"latents": np.zeros((3, 5), np.float32)},
        "generate: latents must be float32 [B, 4]; received shape] [3 5]",
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
        _call(exported.loaded, signature, **{k: tf.constant(v) for k, v in inputs.items()})
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
            (np.zeros((2, 8, 8, 1), np.float32), "must be float32 [B, 16, 16, 1]; received shape] [2 8 8 1]"),
            (np.zeros((16, 16, 1), np.float32), "received shape] [16 16 1]"),
            (
                np.zeros((2, 16, 16, 1, 1), np.float32),
                "[2,16,16,1,1] is not compatible with expected shape [?,16,16,1]",
            ),
            (np.zeros((2, 16, 16, 1), np.int64), "Type mismatch: actual int64 vs. expect float"),
        ]:
            with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(message)):
                energy(images)


# -------------------------------------------------------- TF Serving requests
def _request(signature, **inputs):
    request = predict_pb2.PredictRequest()
    request.model_spec.name, request.model_spec.signature_name = "tiny", signature
    for key, value in inputs.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    return request


def _serve(loaded, request):
    """What TF Serving does with a PredictRequest: tensors from the protos, by name, into the signature."""
    function = loaded.signatures[request.model_spec.signature_name]
    specs = function.structured_input_signature[1]
    assert set(request.inputs) == set(specs), request.model_spec.signature_name
    for key, proto in request.inputs.items():
        assert tf.dtypes.as_dtype(proto.dtype) == specs[key].dtype, key
    return function(**{key: tf.constant(tf.make_ndarray(proto)) for key, proto in request.inputs.items()})


def test_predict_requests_and_warmup_records_are_accepted(exported):
    images, latents, seeds = tiny_images(3), np.zeros((3, 4), np.float32), np.arange(3, dtype=np.int64)
    requests = [
        _request("energy", images=images),
        _request("energy_uint8", images=model_range_to_uint8(images)),
        _request("ood_score", images=images),
        _request("ood_score_uint8", images=model_range_to_uint8(images)),
        _request("serving_default", images=images),
        _request("sample", seeds=seeds),
        _request("refine", latents=latents, seeds=seeds),
        _request("generate", latents=latents),
        _request("sampler_config", seeds=seeds),
    ]
    assert {r.model_spec.signature_name for r in requests} == set(exported.loaded.signatures)
    for request in requests:
        outputs = _serve(exported.loaded, request)
        assert set(outputs) == set(EXPECTED_SIGNATURES[request.model_spec.signature_name][1])
        assert all(v.shape[0] == 3 for v in outputs.values())

    warmup = tf.data.TFRecordDataset(str(exported.version / WARMUP_FILE))
    logs = [prediction_log_pb2.PredictionLog.FromString(record.numpy()) for record in warmup]
    assert {log.predict_log.request.model_spec.signature_name for log in logs} == set(EXPECTED_SIGNATURES)
    for log in logs:
        assert log.predict_log.request.model_spec.name == "tiny"
        _serve(exported.loaded, log.predict_log.request)


# -------------------------------------------------- versions and atomicity
def test_killed_export_leaves_no_version(synthesis, tmp_path):
    """SIGKILL when the complete SavedModel is about to be renamed from its temporary directory."""
    process = _start(
        sys.executable, SIGNAL_HOOK, "before-rename", 0, "SIGKILL", "--",
        "export", synthesis.keras_file, "--base-path", "serving", "--name", "tiny", cwd=tmp_path,
    )  # fmt: skip
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == -signal.SIGKILL, stderr[-3000:]

    model_dir = tmp_path / "serving" / "tiny"
    [leftover] = list(model_dir.iterdir())  # the complete but unpublished SavedModel
    assert not leftover.name.isdigit() and (leftover / "saved_model.pb").is_file()
    assert not (tmp_path / "serving" / MODELS_CONFIG).exists()

    assert export_model(synthesis.model, tmp_path / "serving", "tiny") == model_dir / "1"
    assert sorted(p.name for p in model_dir.iterdir()) == ["1"]  # the dead export's directory is gone


def test_versions_count_on_and_are_never_overwritten(synthesis, tmp_path):
    base = tmp_path / "serving"
    base.mkdir()
    (base / MODELS_CONFIG).write_text('model_config_list { config { name: "other" base_path: "/models/other" } }\n')
    (base / BATCHING_PARAMETERS).write_text("max_batch_size { value: 8 }\n")
    model = synthesis.model
    assert export_model(model, base, "tiny", version=3) == base / "tiny" / "3"
    with pytest.raises(ValueError, match=r"version 3 of 'tiny' already exists .* never overwritten"):
        export_model(model, base, "tiny", version=3)
    assert export_model(model, base, "tiny") == base / "tiny" / "4"
    with pytest.raises(ValueError, match=re.escape("model name '../x' must be")):
        export_model(model, base, "../x")

    config = text_format.Parse((base / MODELS_CONFIG).read_text(), model_server_config_pb2.ModelServerConfig())
    entries = {c.name: c.base_path for c in config.model_config_list.config}
    assert entries == {"other": "/models/other", "tiny": (base / "tiny").resolve().as_posix()}
    assert (base / BATCHING_PARAMETERS).read_text() == "max_batch_size { value: 8 }\n"  # the user's, kept
    signatures = set(tf.saved_model.load(str(base / "tiny" / "4")).signatures)
    assert signatures == set(EXPECTED_SIGNATURES) - {"refine"}


# ------------------------------------------------------------------ hat-ebm ood
def test_ood_command_reports_the_metrics_of_the_savedmodel_score(exported, tmp_path):
    inside, outside = tiny_images(40, seed=2), np.random.default_rng(3).uniform(-1, 1, (30, 16, 16, 1))
    outside = np.clip(outside * 0.2 + 0.7, -1, 1).astype(np.float32)
    np.savez(tmp_path / "in.npz", images=model_range_to_uint8(inside))
    np.save(tmp_path / "out.npy", outside)
    result = hat_ebm(
        "ood", "--model", exported.version.parent, "--in", "in.npz", "--out", "out.npy", "--out", "in.npz",
        "--json", "report.json", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "AUROC" in result.stdout and "FPR@95%TPR" in result.stdout and "out.npy" in result.stdout
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["model"] == str(exported.version) and report["in"]["num"] == 40
    expected = ood_metrics(exported.model.energy(inside), exported.model.energy(outside))
    got = report["out"][0]
    for key in ("auroc", "aupr", "fpr_at_95_tpr"):
        assert got[key] == pytest.approx(expected[key], abs=1e-6), key
    assert report["out"][1]["auroc"] == pytest.approx(0.5)  # the in-distribution set against itself


# ------------------------------------------------- the run's sampler, served
NUM_SERVED = 6
# Sampler flags given to `hat-ebm export`, and the settings they override.
EXPORT_FLAGS = ("--steps", "1", "--temperature", "0.5", "--max-residual-norm", "none", "--no-noise")
FLAG_SETTINGS = {"num_steps": 1, "temperature": 0.5, "max_residual_norm": None, "noise": False}


@pytest.fixture(scope="module")
def served_run(tiny_run):
    """The tiny trained run exported as it is and with sampler flags, and drawn from by `hat-ebm sample`."""
    root, _ = tiny_run
    commands = {
        "default": ("export", "run", "--base-path", "served", "--name", "run"),
        "flags": ("export", "run", "--base-path", "served_flags", "--name", "run", *EXPORT_FLAGS),
        "sample": ("sample", "run", "--num", NUM_SERVED, "--seed", 0, "--out", "served_samples.npz"),
    }
    processes = {key: _start(HAT_EBM, *command, cwd=root) for key, command in commands.items()}
    stdout = {key: _finish(process) for key, process in processes.items()}
    evaluation = LangevinConfig.from_dict(
        yaml.safe_load((root / "run" / "config.yaml").read_text())["evaluation"]["sampler"]
    )
    model = keras.saving.load_model(root / "run" / "model.keras")
    assert evaluation != model.sampler_config  # so that the tests can tell which sampler was baked in
    versions = {"default": root / "served" / "run" / "1", "flags": root / "served_flags" / "run" / "1"}
    return SimpleNamespace(
        root=root,
        model=model,
        stdout=stdout,
        versions=versions,
        loaded={key: tf.saved_model.load(str(path)) for key, path in versions.items()},
        baked={"default": evaluation, "flags": dataclasses.replace(evaluation, **FLAG_SETTINGS)},
    )


def test_served_samples_are_hat_ebm_sample_of_the_run(served_run):
    seeds = np.arange(NUM_SERVED, dtype=np.int64)  # row seeds (0, i), as `hat-ebm sample --seed 0`
    served = _call(served_run.loaded["default"], "sample", seeds=seeds)["images"]
    pixels = np.load(served_run.root / "served_samples.npz")["images"]
    np.testing.assert_array_equal(model_range_to_uint8(served), pixels)
    assert len(np.unique(pixels)) > 50  # not a saturated grid, where any images would agree
    # The float images `hat-ebm sample` converted: the run's evaluation sampler, not the training sampler.
    model = served_run.model
    np.testing.assert_allclose(served, model.sample(NUM_SERVED, seed=0, config=served_run.baked["default"]), atol=1e-6)
    assert np.abs(served - model.sample(NUM_SERVED, seed=0)).max() > 1e-2


def test_sampler_flags_override_the_baked_sampler(served_run):
    seeds = np.arange(NUM_SERVED, dtype=np.int64)
    served = _call(served_run.loaded["flags"], "sample", seeds=seeds)["images"]
    expected = served_run.model.sample(NUM_SERVED, seed=0, config=served_run.baked["flags"])
    np.testing.assert_allclose(served, expected, atol=1e-6)
    assert np.abs(served - _call(served_run.loaded["default"], "sample", seeds=seeds)["images"]).max() > 1e-2


@pytest.mark.parametrize("export", ["default", "flags"])
def test_the_baked_sampler_reads_back_from_the_savedmodel_and_is_printed(served_run, export):
    baked = served_run.baked[export]
    rows = _call(served_run.loaded[export], "sampler_config", seeds=np.array([3, 1, 4], np.int64))["json"]
    assert [LangevinConfig.from_dict(json.loads(row)) for row in rows] == [baked] * 3
    asset = (served_run.versions[export] / SAMPLER_CONFIG_FILE).read_text()
    assert LangevinConfig.from_dict(json.loads(asset)) == baked
    printed = served_run.stdout[export].split("sampler baked into sample and refine")[1]
    for key, value in baked.to_dict().items():
        assert f"{key}={value}" in printed, key


def test_a_keras_file_exports_its_own_sampler(exported):
    [row] = _call(exported.loaded, "sampler_config", seeds=np.zeros(1, np.int64))["json"]
    assert LangevinConfig.from_dict(json.loads(row)) == exported.model.sampler_config
