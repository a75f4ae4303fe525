"""SavedModel export of a trained ``HatEBM`` for TF Serving.

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

Signatures (all ``tensorflow/serving/predict``, batch dimension ``None``):

==================  =================================================  =========================
name                inputs                                             outputs
==================  =================================================  =========================
energy              ``images`` float32 ``[B, H, W, C]`` in [-1, 1]      ``energy`` ``[B]``
energy_uint8        ``images`` uint8 ``[B, H, W, C]``                   ``energy`` ``[B]``
ood_score           ``images`` float32 ``[B, H, W, C]`` in [-1, 1]      ``score`` ``[B]``
ood_score_uint8     ``images`` uint8 ``[B, H, W, C]``                   ``score`` ``[B]``
ood_detect          ``images`` float32 ``[B, H, W, C]`` in [-1, 1]      ``score``, ``p_value``, ``is_ood`` ``[B]``
ood_detect_uint8    ``images`` uint8 ``[B, H, W, C]``                   ``score``, ``p_value``, ``is_ood`` ``[B]``
sample              ``seeds`` int64 ``[B]``                             ``images`` ``[B, H, W, C]``
refine (joint)      ``latents`` ``[B, *latent]``, ``seeds`` ``[B]``     ``images`` ``[B, H, W, C]``
generate            ``latents`` float32 ``[B, *latent]``                ``images`` ``[B, H, W, C]``
sampler_config      ``seeds`` int64 ``[B]``                             ``json`` string ``[B]``
serving_default     = ``ood_score``
==================  =================================================  =========================

``ood_score`` is the energy ``H(x)``: higher means less likely under the model,
so more out-of-distribution. ``ood_detect`` and ``ood_detect_uint8`` exist
only in a calibrated export (``calibration``, see
``hat_ebm_tf.evaluation.ood_calibration``): beside ``score`` they return the
conformal ``p_value`` against the stored calibration scores and
``is_ood = p_value <= fpr``, computed in the graph. ``sample``/``refine`` run the model's own seeded
sampler (``HatEBM.sample_with_seeds``/``refine_with_seeds``) with one
``LangevinConfig`` baked in, by default the model's ``sampler_config``
(``hat-ebm export`` passes the run's evaluation sampler). ``sampler_config``
returns those settings as JSON (``LangevinConfig.to_dict()``), one copy per
row so that it batches like every other signature, and
``assets.extra/sampler_config.json`` holds the same text. Image ``b`` of
``sample`` is the chain of row seed ``(0, seeds[b])`` (so seeds ``0..n-1`` give
the in-process ``model.sample(n, seed=0, config=...)``), whatever the batch it
is drawn in: its random draws depend on its seed alone, and only float
round-off of the same arithmetic at another batch size may differ (about 1e-7).

Every input is checked inside the graph, so that the checks also hold inside
TF Serving: a wrong rank, size or channel count fails with an
``InvalidArgument`` error that names the signature, the expected and the
received shape; an empty batch (B = 0), and float images outside [-1, 1] (or
NaN), fail likewise; a wrong dtype is refused by the runtime at the
signature's typed input.

A SavedModel is a program: loading one runs its graph, so load only models
from a source you trust.
"""

import importlib
import json
import os
import re
import shutil
import socket
from pathlib import Path

import numpy as np
import tensorflow as tf
from google.protobuf import text_format

from hat_ebm_tf.data import uint8_to_model_range
from hat_ebm_tf.evaluation.ood_calibration import CalibrationModule
from hat_ebm_tf.serving.scoring import CALIBRATION_FILE

MODELS_CONFIG = "models.config"
BATCHING_PARAMETERS = "batching_parameters.txt"
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
SAMPLER_CONFIG_FILE = os.path.join("assets.extra", "sampler_config.json")
# TF Serving versions are int64.
MAX_VERSION = 2**63 - 1

_NAME_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_TEMP_PREFIX = ".incomplete-"

# An example, not a tuned setting: TF Serving batches requests of one
# signature along dimension 0, which every signature here allows.
_BATCHING_EXAMPLE = """\
# TF Serving batching parameters (BatchingParameters, text format), for
#   tensorflow_model_server --enable_batching --batching_parameters_file=/models/batching_parameters.txt
# An example: tune max_batch_size and batch_timeout_micros against your latency budget.
# Every signature of the Hat EBM export batches along dimension 0; `sample` draws
# the same image for a seed whatever the batch it is merged into (up to float round-off).
max_batch_size { value: 64 }
batch_timeout_micros { value: 5000 }
max_enqueued_batches { value: 100 }
num_batch_threads { value: 2 }
"""


def serving_protos(name):
    """A module of TF Serving's protos, e.g. ``"apis.predict_pb2"``, from the ``serving`` extra.

    tensorflow-serving-api pins TensorFlow 2.21, so it is an extra
    (``pip install 'hat-ebm-tf[serving]'``), imported only by an export.

    Raises:
        ImportError: it is not installed, saying how to install it.
    """
    try:
        return importlib.import_module(f"tensorflow_serving.{name}")
    except ImportError as err:
        raise ImportError(
            f"the export writes TF Serving's warm-up requests and models.config with tensorflow-serving-api ({err}); "
            "install the serving extra: pip install 'hat-ebm-tf[serving]' (it needs tensorflow 2.21)"
        ) from err


# ------------------------------------------------------------ in-graph checks
def _shape_text(row_shape):
    return "[" + ", ".join(["B", *map(str, row_shape)]) + "]"


def _checked_shape(tensor, row_shape, where):
    """``tensor`` after run-time checks that it is ``[B, *row_shape]``.

    Args:
        tensor: a signature input.
        row_shape: static per-row shape, e.g. ``(16, 16, 1)`` or ``()``.
        where: ``"signature: input name"``, used in the message.

    Returns:
        ``tensor``, with the checks as control dependencies.
    """
    rank = len(row_shape) + 1
    shape = tf.shape(tensor, out_type=tf.int64)
    # Padding the received shape lets a tensor of lower rank compare unequal
    # instead of failing to slice.
    padded = tf.concat([shape, tf.zeros([rank], tf.int64)], axis=0)
    same = tf.reduce_all(tf.equal(padded[1:rank], tf.constant(row_shape, tf.int64, shape=[rank - 1])))
    message = f"{where} must be {tensor.dtype.name} {_shape_text(row_shape)}; received shape"
    # An empty batch is refused here, naming the signature, rather than deep in a network or the sampler.
    empty = f"{where} must hold at least one row (B > 0); received shape"
    checks = [
        tf.debugging.Assert(same, [message, shape], summarize=16),
        tf.debugging.Assert(padded[0] > 0, [empty, shape], summarize=16),
    ]
    with tf.control_dependencies(checks):
        # Grappler folds the rank from the signature's static shape, so a
        # tensor of higher rank whose leading dimensions match passes the check
        # above; EnsureShape checks the rank of the received tensor.
        return tf.ensure_shape(tensor, [None, *row_shape])


def _checked_images(images, image_shape, signature):
    """Float images after the shape check and a check that values are in [-1, 1] (NaN fails)."""
    where = f"{signature}: images"
    images = _checked_shape(images, image_shape, where)
    in_range = tf.reduce_all(tf.logical_and(images >= -1.0, images <= 1.0))
    message = f"{where} must hold values in [-1, 1] (send raw uint8 pixels to {signature}_uint8); received min, max ="
    assert_range = tf.debugging.Assert(in_range, [message, tf.reduce_min(images), tf.reduce_max(images)])
    with tf.control_dependencies([assert_range]):
        return tf.identity(images)


def _checked_latents(latents, latent_shape, signature):
    """Latents after the shape check and a check that they are finite."""
    where = f"{signature}: latents"
    latents = _checked_shape(latents, latent_shape, where)
    finite = tf.reduce_all(tf.math.is_finite(latents))
    with tf.control_dependencies([tf.debugging.Assert(finite, [f"{where} must be finite"])]):
        return tf.identity(latents)


def _row_seeds(seeds, signature):
    """Serving seeds ``[B]`` int64 → the sampler's row seeds ``[B, 2]``: ``(0, seeds[b])``."""
    seeds = _checked_shape(seeds, (), f"{signature}: seeds")
    return tf.stack([tf.zeros_like(seeds), seeds], axis=1)


# ------------------------------------------------------------------ signatures
def sampler_json(config):
    """The text that ``sampler_config`` and ``assets.extra/sampler_config.json`` hold: ``config.to_dict()`` as JSON."""
    return json.dumps(config.to_dict())


def serving_functions(model, sampler=None, calibration=None):
    """The signature functions of ``model``: name → ``tf.function`` with its input signature.

    Args:
        model: a trained ``HatEBM``.
        sampler: ``LangevinConfig`` baked into ``sample`` and ``refine``
            (default: ``model.sampler_config``).
        calibration: a ``CalibrationModule``: adds ``ood_detect`` and
            ``ood_detect_uint8``; None (default) leaves them out.

    Returns:
        dict of ``tf.function``; each returns a dict of named outputs.
    """
    image_shape, latent_shape = tuple(model.image_shape), tuple(model.latent_shape)
    config = sampler or model.sampler_config
    float_images = tf.TensorSpec([None, *image_shape], tf.float32, name="images")
    uint8_images = tf.TensorSpec([None, *image_shape], tf.uint8, name="images")
    seeds_spec = tf.TensorSpec([None], tf.int64, name="seeds")
    latents_spec = tf.TensorSpec([None, *latent_shape], tf.float32, name="latents")

    def energy_of(signature, output=None, head=None):
        # The outputs: {output: energy}, or head(energy) (a dict).
        def outputs(energy):
            return head(energy) if head else {output: energy}

        @tf.function(input_signature=[float_images])
        def from_float(images):
            return outputs(model.energy(_checked_images(images, image_shape, signature)))

        @tf.function(input_signature=[uint8_images])
        def from_uint8(images):
            where = f"{signature}_uint8: images"
            return outputs(model.energy(uint8_to_model_range(_checked_shape(images, image_shape, where))))

        return {signature: from_float, f"{signature}_uint8": from_uint8}

    @tf.function(input_signature=[seeds_spec])
    def sample(seeds):
        return {"images": model.sample_with_seeds(_row_seeds(seeds, "sample"), config)}

    @tf.function(input_signature=[latents_spec, seeds_spec])
    def refine(latents, seeds):
        latents = _checked_latents(latents, latent_shape, "refine")
        rows = _row_seeds(seeds, "refine")
        # One seed per latent row: the batch sizes must agree.
        same_batch = tf.equal(tf.shape(latents)[0], tf.shape(rows)[0])
        message = "refine: latents and seeds must have the same batch size; received"
        with tf.control_dependencies(
            [tf.debugging.Assert(same_batch, [message, tf.shape(latents)[0], tf.shape(rows)[0]])]
        ):
            latents = tf.identity(latents)
        return {"images": model.refine_with_seeds(latents, rows, config).images}

    @tf.function(input_signature=[latents_spec])
    def generate(latents):
        return {"images": model.generate(_checked_latents(latents, latent_shape, "generate"))}

    @tf.function(input_signature=[seeds_spec])
    def sampler_config(seeds):
        # One copy per seed: TF Serving's batching merges requests along dimension 0.
        seeds = _checked_shape(seeds, (), "sampler_config: seeds")
        return {"json": tf.fill(tf.shape(seeds), sampler_json(config))}

    functions = {**energy_of("energy", "energy"), **energy_of("ood_score", "score")}
    if calibration is not None:
        functions.update(energy_of("ood_detect", head=calibration.detect))
    functions["sample"] = sample
    if model.mode != "synthesis":
        functions["refine"] = refine
    functions["generate"] = generate
    functions["sampler_config"] = sampler_config
    return functions


def build_serving_module(model, sampler=None, calibration=None):
    """A ``tf.Module`` holding the signature functions and the variables they read.

    Only the variables the functions capture are saved (the networks', and
    the calibration's), not the training banks or optimizer state.

    Args:
        model: a trained ``HatEBM``.
        sampler: ``LangevinConfig`` baked into ``sample`` and ``refine``
            (default: ``model.sampler_config``).
        calibration: ``OODCalibration`` behind ``ood_detect`` (attribute
            ``ood_calibration`` of the module), or None.

    Returns:
        ``(module, signatures)``: signatures maps each name (and
        ``serving_default``) to a concrete function.
    """
    module = tf.Module()
    if calibration is not None:
        module.ood_calibration = CalibrationModule(calibration)
    signatures = {}
    captured = {}
    for name, function in serving_functions(model, sampler, getattr(module, "ood_calibration", None)).items():
        setattr(module, name, function)
        signatures[name] = function.get_concrete_function()
        captured.update({id(v): v for v in signatures[name].variables})
    module.serving_variables = list(captured.values())
    signatures["serving_default"] = signatures["ood_score"]
    return module, signatures


def warmup_requests(name, signatures):
    """One ``PredictionLog`` per signature, batch 1, replayed by TF Serving when it loads a version.

    Args:
        name: the model name the requests address.
        signatures: signature name → concrete function.
    """
    apis, predict_pb2 = serving_protos("apis.model_pb2"), serving_protos("apis.predict_pb2")
    prediction_log_pb2 = serving_protos("apis.prediction_log_pb2")
    logs = []
    for signature, function in signatures.items():
        request = predict_pb2.PredictRequest(model_spec=apis.ModelSpec(name=name, signature_name=signature))
        for spec in function.structured_input_signature[0]:
            value = np.zeros([1, *spec.shape[1:]], spec.dtype.as_numpy_dtype)
            request.inputs[spec.name].CopyFrom(tf.make_tensor_proto(value))
        logs.append(prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request)))
    return logs


# --------------------------------------------------------------------- layout
def check_model_name(name):
    """A TF Serving model name: letters, digits, ``_``, ``.``, ``-``; no leading ``.`` or ``-``."""
    if not isinstance(name, str) or not _NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"export_model: model name {name!r} must be letters, digits, '_', '.' or '-', not starting with '.' or '-'"
        )
    return name


def existing_versions(model_dir):
    """Sorted integer versions present under ``model_dir`` (directories named by an integer)."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())


def _temporary_name(version):
    return f"{_TEMP_PREFIX}{version}-{socket.gethostname()}-{os.getpid()}"


def _remove_stale_temporaries(model_dir):
    """Delete temporary directories left by exports on this host whose process has died."""
    host = socket.gethostname()
    for path in Path(model_dir).glob(f"{_TEMP_PREFIX}*"):
        _, _, rest = path.name.partition(_TEMP_PREFIX)
        owner_host, _, pid = rest.partition("-")[2].rpartition("-")
        if owner_host != host or not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except PermissionError:  # alive, another user's
            pass


def _write_text_atomically(path, text):
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def read_models_config(path):
    """The ``ModelServerConfig`` of a ``models.config`` file (empty when there is none).

    Raises:
        ValueError: the file is not a ModelServerConfig in text format, or
            holds a ``custom_model_config`` (no ``model_config_list`` to add to).
    """
    path = Path(path)
    config = serving_protos("config.model_server_config_pb2").ModelServerConfig()
    if path.exists():
        try:
            text_format.Parse(path.read_text(), config)
        except (text_format.ParseError, UnicodeDecodeError) as err:
            raise ValueError(f"export_model: {path} is not a ModelServerConfig in text format: {err}") from err
        if config.HasField("custom_model_config"):
            raise ValueError(f"export_model: {path} holds a custom_model_config; cannot add a model_config_list entry")
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
    _write_text_atomically(path, text_format.MessageToString(config))
    return path


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
    check_model_name(name)
    base_path = Path(base_path)
    model_dir = base_path / name
    if version is None:
        version = max(existing_versions(model_dir), default=0) + 1
    if not isinstance(version, int) or isinstance(version, bool) or not 0 < version <= MAX_VERSION:
        raise ValueError(f"export_model: version={version!r} must be an integer in [1, {MAX_VERSION}] (int64)")
    # Checked before anything is written: a bad file fails the export before a version is published.
    read_models_config(base_path / MODELS_CONFIG)
    model_dir.mkdir(parents=True, exist_ok=True)
    final = model_dir / str(version)
    if final.exists():
        raise ValueError(
            f"export_model: version {version} of {name!r} already exists at {final}; versions are never overwritten"
        )
    _remove_stale_temporaries(model_dir)

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
            raise ValueError(f"export_model: version {version} of {name!r} appeared at {final} during the export")
        os.rename(temporary, final)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)

    root = Path(serving_root) if serving_root else base_path.resolve()
    update_models_config(base_path, name, (root / name).as_posix())
    batching = base_path / BATCHING_PARAMETERS
    if not batching.exists():
        _write_text_atomically(batching, _BATCHING_EXAMPLE)
    return final
