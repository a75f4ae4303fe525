"""SavedModel export of a trained ``HatEBM`` in TF Serving's layout: versions, models.config, batching, warm-up.

``export_model(model, base_path, name)`` writes version ``N`` of model ``name``
in TF Serving's layout::

    base_path/
        models.config              ModelServerConfig (text format), one entry per model
        batching_parameters.txt    an example for --enable_batching (written once, never overwritten)
        name/
            N/                     the SavedModel
                saved_model.pb
                variables/
                assets.extra/tf_serving_warmup_requests
                assets.extra/sampler_config.json   the sampler settings baked into sample/refine
                assets.extra/ood_calibration.json  the OOD calibration (only when calibrated)

A version is written to a hidden temporary directory next to the versions and
renamed to ``N`` once complete: TF Serving only loads directories named by an
integer, so it never sees a half-written version, and an existing version is
never overwritten.

The signatures (``energy``, ``ood_score``, ``sample``, ``refine``,
``generate``, ``sampler_config``, the uint8 twins of those taking images, and
``ood_detect`` in a calibrated export) are ``hat_ebm_tf.serving.signatures``;
this module writes them in TF Serving's layout, with the warm-up requests
that TF Serving replays on loading a version.

A SavedModel is a program: loading one runs its graph, so load only models
from a source you trust.
"""

import importlib
import json
import os
import shutil
import socket
from pathlib import Path

import numpy as np
import tensorflow as tf
from google.protobuf import text_format

from hat_ebm_tf.argtypes import SERVING_NAME_PATTERN, SERVING_NAME_RULE
from hat_ebm_tf.config import INT64_MAX
from hat_ebm_tf.errors import MissingDependencyError, RunDirError
from hat_ebm_tf.outputs import remove_stale_temporaries, write_atomically
from hat_ebm_tf.serving.scoring import CALIBRATION_FILE
from hat_ebm_tf.serving.signatures import MAX_SAMPLE_BATCH, build_serving_module, sampler_json

MODELS_CONFIG = "models.config"
BATCHING_PARAMETERS = "batching_parameters.txt"
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
SAMPLER_CONFIG_FILE = os.path.join("assets.extra", "sampler_config.json")
# TF Serving versions are int64.
MAX_VERSION = INT64_MAX
_TEMP_PREFIX = ".incomplete-"

# An example, not a tuned setting: TF Serving batches requests of one
# signature along dimension 0, which every signature here allows.
_BATCHING_EXAMPLE = f"""\
# TF Serving batching parameters (BatchingParameters, text format), for
#   tensorflow_model_server --enable_batching --batching_parameters_file=/models/batching_parameters.txt
# An example: tune batch_timeout_micros against your latency budget.
# Every signature of the Hat EBM export batches along dimension 0; `sample` draws
# the same image for a seed whatever the batch it is merged into (up to float round-off).
# max_batch_size caps a merged batch, and a single request of more rows fails with
# INVALID_ARGUMENT ("Task size ... is larger than maximum input batch size"): send
# larger batches as several requests. `sample` and `refine` refuse more than
# {MAX_SAMPLE_BATCH} seeds a request in any case, with or without batching.
max_batch_size {{ value: {MAX_SAMPLE_BATCH} }}
batch_timeout_micros {{ value: 5000 }}
max_enqueued_batches {{ value: 100 }}
num_batch_threads {{ value: 2 }}
"""


def serving_protos(name):
    """A module of TF Serving's protos, e.g. ``"apis.predict_pb2"``, from the ``serving`` extra.

    tensorflow-serving-api pins TensorFlow 2.21, so it is an extra
    (``pip install 'hat-ebm-tf[serving]'``), imported only by an export.

    Raises:
        MissingDependencyError: it is not installed, saying how to install it.
    """
    try:
        return importlib.import_module(f"tensorflow_serving.{name}")
    except ImportError as err:
        raise MissingDependencyError(
            f"the export writes TF Serving's warm-up requests and models.config with tensorflow-serving-api ({err}); "
            "install the serving extra: pip install 'hat-ebm-tf[serving]' (it needs tensorflow 2.21)"
        ) from err


def warmup_requests(name, signatures):
    """One ``PredictionLog`` per signature, batch 1, replayed by TF Serving when it loads a version.

    Args:
        name: the model name the requests address.
        signatures: signature name → ``tf.function`` with an input signature.
    """
    apis, predict_pb2 = serving_protos("apis.model_pb2"), serving_protos("apis.predict_pb2")
    prediction_log_pb2 = serving_protos("apis.prediction_log_pb2")
    logs = []
    for signature, function in signatures.items():
        request = predict_pb2.PredictRequest(model_spec=apis.ModelSpec(name=name, signature_name=signature))
        for spec in function.input_signature:
            value = np.zeros([1, *spec.shape[1:]], spec.dtype.as_numpy_dtype)
            request.inputs[spec.name].CopyFrom(tf.make_tensor_proto(value))
        logs.append(prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request)))
    return logs


def check_model_name(name):
    """A TF Serving model name (``hat_ebm_tf.argtypes.SERVING_NAME_RULE``, which ``hat-ebm export --name`` checks)."""
    if not isinstance(name, str) or not SERVING_NAME_PATTERN.fullmatch(name):
        raise ValueError(f"export_model: model name {name!r}: {SERVING_NAME_RULE}")
    return name


def existing_versions(model_dir):
    """Sorted integer versions present under ``model_dir`` (directories named by an integer)."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())


def _temporary_name(version):
    return f"{_TEMP_PREFIX}{version}-{socket.gethostname()}-{os.getpid()}"


def _held_by_a_live_export(path):
    """Whether the temporary directory ``path`` may belong to a running export: another host's, or a live process's."""
    _, _, rest = path.name.partition(_TEMP_PREFIX)
    owner_host, _, pid = rest.partition("-")[2].rpartition("-")
    if owner_host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def read_models_config(path):
    """The ``ModelServerConfig`` of a ``models.config`` file (empty when there is none).

    Raises:
        RunDirError: the file is not a ModelServerConfig in text format, or
            holds a ``custom_model_config`` (no ``model_config_list`` to add to).
    """
    path = Path(path)
    config = serving_protos("config.model_server_config_pb2").ModelServerConfig()
    if path.exists():
        try:
            text_format.Parse(path.read_text(), config)
        except (text_format.ParseError, UnicodeDecodeError) as err:
            raise RunDirError(f"export_model: {path} is not a ModelServerConfig in text format: {err}") from err
        if config.HasField("custom_model_config"):
            raise RunDirError(f"export_model: {path} holds a custom_model_config; cannot add a model_config_list entry")
    return config


def update_models_config(base_path, name, model_base_path):
    """Add or update model ``name`` in ``base_path/models.config`` (ModelServerConfig, text format).

    Other models' entries are kept. Returns the config file's path.
    """
    path = Path(base_path) / MODELS_CONFIG
    config = read_models_config(path)
    entries = config.model_config_list.config
    entry = next((e for e in entries if e.name == name), None) or entries.add()
    entry.name = name
    entry.base_path = model_base_path
    entry.model_platform = "tensorflow"
    write_atomically(path, text_format.MessageToString(config))
    return path


def target_version(base_path, name, version=None):
    """The version an export of ``name`` under ``base_path`` writes, after the checks made before any work.

    Args:
        base_path: root directory of the model server's models.
        name: the model name.
        version: the version asked for, or None for one more than the highest
            existing version (or 1).

    Returns:
        The version number.

    Raises:
        MissingDependencyError: the serving extra is not installed.
        ValueError: a bad model name or version number.
        RunDirError: the version exists (versions are never overwritten), or
            ``models.config`` cannot be updated.
    """
    check_model_name(name)
    serving_protos("apis.predict_pb2")  # the serving extra, before any work
    model_dir = Path(base_path) / name
    if version is None:
        version = max(existing_versions(model_dir), default=0) + 1
    if not isinstance(version, int) or isinstance(version, bool) or not 0 < version <= MAX_VERSION:
        raise ValueError(f"export_model: version={version!r} must be an integer in [1, {MAX_VERSION}] (int64)")
    final = model_dir / str(version)
    if final.exists():
        raise RunDirError(
            f"export_model: version {version} of {name!r} already exists at {final}; versions are never "
            "overwritten: give another --version, or leave it out for the next one"
        )
    # A bad file fails the export before a version is published.
    read_models_config(Path(base_path) / MODELS_CONFIG)
    return version


def export_model(model, base_path, name, version=None, serving_root=None, sampler=None, calibration=None):
    """Write a SavedModel of ``model`` as version ``version`` of ``name`` under ``base_path``.

    Args:
        model: a trained ``HatEBM``.
        base_path: root directory of the model server's models.
        name: model name (the directory ``base_path/name`` and the name in
            ``models.config`` and in requests).
        version: positive integer; default one more than the highest
            existing version (or 1). An existing version is never overwritten.
        serving_root: the path under which TF Serving sees ``base_path`` (e.g.
            ``/models`` in the tensorflow/serving Docker image), used for the
            ``base_path`` entry of ``models.config``; default ``base_path``
            made absolute.
        sampler: ``LangevinConfig`` baked into ``sample`` and ``refine``, and
            written to ``assets.extra/sampler_config.json`` (default:
            ``model.sampler_config``).
        calibration: ``OODCalibration``: adds the ``ood_detect`` signatures
            and ``assets.extra/ood_calibration.json``; None (default) exports
            without them.

    Returns:
        ``Path`` of the new version directory.
    """
    version = target_version(base_path, name, version)
    base_path = Path(base_path)
    model_dir = base_path / name
    model_dir.mkdir(parents=True, exist_ok=True)
    final = model_dir / str(version)
    # Left by exports on this host whose process has died.
    remove_stale_temporaries(model_dir, f"{_TEMP_PREFIX}*", in_use=_held_by_a_live_export)

    sampler = sampler or model.sampler_config
    module, signatures = build_serving_module(model, sampler, calibration)
    temporary = model_dir / _temporary_name(version)
    try:
        tf.saved_model.save(module, os.fspath(temporary), signatures=signatures)
        warmup = temporary / WARMUP_FILE
        warmup.parent.mkdir()
        with tf.io.TFRecordWriter(os.fspath(warmup)) as writer:
            for log in warmup_requests(name, signatures):
                writer.write(log.SerializeToString())
        (temporary / SAMPLER_CONFIG_FILE).write_text(sampler_json(sampler) + "\n")
        if calibration is not None:
            (temporary / CALIBRATION_FILE).write_text(json.dumps(calibration.to_dict(), indent=1) + "\n")
        if final.exists():  # another export took this version meanwhile
            raise RunDirError(f"export_model: version {version} of {name!r} appeared at {final} during the export")
        os.rename(temporary, final)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)

    root = Path(serving_root) if serving_root else base_path.resolve()
    update_models_config(base_path, name, (root / name).as_posix())
    batching = base_path / BATCHING_PARAMETERS
    if not batching.exists():
        write_atomically(batching, _BATCHING_EXAMPLE)
    return final
