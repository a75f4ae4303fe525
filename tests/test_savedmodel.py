"""SavedModel export in TF Serving's layout (``hat_ebm_tf.serving.savedmodel``): versions, models.config, warm-up.

Real SavedModels, real subprocesses (`hat-ebm export`), real TF Serving protos
(tensorflow-serving-api); TF Serving itself is not installed.
"""

import re
import signal
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format, wrappers_pb2
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2
from tensorflow_serving.config import model_server_config_pb2

from hat_ebm_tf.data import model_range_to_uint8
from hat_ebm_tf.errors import RunDirError
from hat_ebm_tf.serving.savedmodel import BATCHING_PARAMETERS, MAX_VERSION, MODELS_CONFIG, WARMUP_FILE, export_model
from hat_ebm_tf.serving.signatures import MAX_SAMPLE_BATCH
from tests.helpers import EXPECTED_SIGNATURES, SIGNAL_HOOK, cli_fails, start_process, tiny_images, tiny_model


@pytest.fixture(scope="module")
def synthesis(tmp_path_factory):
    """A tiny synthesis-mode model (no refine signature; quicker to export), and its .keras file."""
    model = tiny_model()
    path = tmp_path_factory.mktemp("synthesis") / "synthesis.keras"
    model.save(path)
    return SimpleNamespace(model=model, keras_file=path)


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
    # TF Serving's merged batches stay within what `sample` and `refine` take (tests/test_signatures.py).
    assert batching.max_batch_size.value == MAX_SAMPLE_BATCH and batching.num_batch_threads.value > 0


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
        request = log.predict_log.request
        assert request.model_spec.name == "tiny"
        outputs = _serve(exported.loaded, request)
        assert set(outputs) == set(EXPECTED_SIGNATURES[request.model_spec.signature_name][1])
        rows = {tensor.tensor_shape.dim[0].size for tensor in request.inputs.values()}
        assert len(rows) == 1 and {v.shape[0] for v in outputs.values()} == rows


# -------------------------------------------------- versions and atomicity
def test_killed_export_leaves_no_version(synthesis, tmp_path):
    """SIGKILL when the complete SavedModel is about to be renamed from its temporary directory."""
    process = start_process(
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
    with pytest.raises(RunDirError, match=r"version 3 of 'tiny' already exists .* never overwritten"):
        export_model(model, base, "tiny", version=3)
    assert export_model(model, base, "tiny") == base / "tiny" / "4"
    with pytest.raises(ValueError, match=re.escape("model name '../x': a model name is ASCII letters")):
        export_model(model, base, "../x")

    config = text_format.Parse((base / MODELS_CONFIG).read_text(), model_server_config_pb2.ModelServerConfig())
    entries = {c.name: c.base_path for c in config.model_config_list.config}
    assert entries == {"other": "/models/other", "tiny": (base / "tiny").resolve().as_posix()}
    assert (base / BATCHING_PARAMETERS).read_text() == "max_batch_size { value: 8 }\n"  # the user's, kept
    signatures = set(tf.saved_model.load(str(base / "tiny" / "4")).signatures)
    assert signatures == set(EXPECTED_SIGNATURES) - {"refine"}


def test_export_validates_before_publishing_a_version(tmp_path, capsys, models):
    model = tiny_model()
    with pytest.raises(ValueError, match=rf"version={MAX_VERSION + 1} must be an integer in \[1, {MAX_VERSION}\]"):
        export_model(model, tmp_path / "serving", "tiny", version=MAX_VERSION + 1)
    cli_fails(
        capsys, "export", models / "tiny.keras", "--base-path", tmp_path / "serving", "--name", "tiny",
        "--version", MAX_VERSION + 1, code=2, match="int64",
    )  # fmt: skip
    assert not (tmp_path / "serving").exists()
    (tmp_path / "serving").mkdir()
    (tmp_path / "serving" / MODELS_CONFIG).write_text("model_config_list { config { name: ")
    with pytest.raises(RunDirError, match="is not a ModelServerConfig in text format"):
        export_model(model, tmp_path / "serving", "tiny")
    assert sorted(p.name for p in (tmp_path / "serving").iterdir()) == [MODELS_CONFIG]  # no version, no temporary


def test_export_without_the_serving_extra_names_it_before_any_work(tmp_path, capsys, models, monkeypatch):
    # As after `pip install .` (the main command's install): tensorflow-serving-api is absent.
    for module in [m for m in sys.modules if m.split(".")[0] == "tensorflow_serving"] + ["tensorflow_serving"]:
        monkeypatch.setitem(sys.modules, module, None)
    cli_fails(
        capsys, "export", models / "tiny.keras", "--base-path", tmp_path / "serving", "--name", "tiny",
        "--calibrate", "digits", code=1, match=r"missing dependency: .*pip install 'hat-ebm-tf\[serving\]'",
    )  # fmt: skip
    assert not (tmp_path / "serving").exists()


def test_sigterm_during_an_export_cleans_up_and_exits_143(models, tmp_path):
    export = ("export", models / "tiny.keras", "--base-path", tmp_path / "serving", "--name", "tiny")
    command = [sys.executable, SIGNAL_HOOK, "before-rename", 0, "SIGTERM", "--", *export]
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True, timeout=600)
    assert result.returncode == 143, result.stderr[-3000:]
    assert result.stderr.strip().splitlines()[-1] == "hat-ebm export: interrupted: terminated by SIGTERM"
    assert list((tmp_path / "serving" / "tiny").iterdir()) == []  # the temporary SavedModel is removed
    assert not (tmp_path / "serving" / MODELS_CONFIG).exists()
