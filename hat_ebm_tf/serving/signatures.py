"""The signatures of the Hat EBM SavedModel, each input checked in the graph.

``build_serving_module(model)`` returns the ``tf.Module`` that
``hat_ebm_tf.serving.savedmodel.export_model`` saves, and its signatures
(all ``tensorflow/serving/predict``, batch dimension ``None``):

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
``hat_ebm_tf.serving.calibration``): beside ``score`` they return the
conformal ``p_value`` against the stored calibration scores and
``is_ood = p_value <= fpr``, computed in the graph. ``sample``/``refine`` run the model's own seeded
sampler (``HatEBM.sample_with_seeds``/``refine_with_seeds``) with one
``LangevinConfig`` baked in, by default the model's ``sampler_config``
(``hat-ebm export`` passes the run's evaluation sampler). ``sampler_config``
returns those settings as JSON (``LangevinConfig.to_dict()``), one copy per
row so that it batches like every other signature, and the export's
``assets.extra/sampler_config.json`` holds the same text (``sampler_json``). Image ``b`` of
``sample`` is the chain of row seed ``(0, seeds[b])`` (so seeds ``0..n-1`` give
the in-process ``model.sample(n, seed=0, config=...)``), whatever the batch it
is drawn in: its random draws depend on its seed alone, and only float
round-off of the same arithmetic at another batch size may differ (about 1e-7).

Every input is checked inside the graph, so that the checks also hold inside
TF Serving: a wrong rank, size or channel count fails with an
``InvalidArgument`` error that names the signature, the expected and the
received shape; an empty batch (B = 0), and float images outside [-1, 1] (or
NaN), fail likewise; a wrong dtype is refused by the runtime at the
signature's typed input. ``sample`` and ``refine`` draw at most
``MAX_SAMPLE_BATCH`` images a request: a larger batch fails with an
``InvalidArgument`` error naming the cap.
"""

import json

import tensorflow as tf

from hat_ebm_tf.choices import MAX_SAMPLE_BATCH
from hat_ebm_tf.data import uint8_to_model_range
from hat_ebm_tf.serving.calibration import CalibrationModule


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
    # Padding the received shape with -1 lets a tensor of lower rank compare
    # unequal instead of failing to slice, and tells a scalar (padded[0] = -1)
    # from an empty batch (0). Grappler folds the rank from the signature's
    # static shape, so the rank itself (tf.size of the shape) cannot tell.
    padded = tf.concat([shape, tf.fill([rank], tf.constant(-1, tf.int64))], axis=0)
    same = tf.logical_and(
        padded[0] >= 0,
        tf.reduce_all(tf.equal(padded[1:rank], tf.constant(row_shape, tf.int64, shape=[rank - 1]))),
    )
    message = f"{where} must be a rank-{rank} {tensor.dtype.name} {_shape_text(row_shape)} tensor; received shape"
    # An empty batch is refused here, naming the signature, rather than deep in a network or the sampler; only
    # a tensor of the right shape is, so that one message names one problem.
    empty = f"{where} must hold at least one row (B > 0); received shape"
    checks = [
        tf.debugging.Assert(same, [message, shape], summarize=16),
        tf.debugging.Assert(tf.logical_or(tf.logical_not(same), padded[0] > 0), [empty, shape], summarize=16),
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
    """Serving seeds ``[B]`` int64 → row seeds ``[B, 2]``: ``(0, seeds[b])``, with B <= ``MAX_SAMPLE_BATCH``."""
    seeds = _checked_shape(seeds, (), f"{signature}: seeds")
    # Every chain of a request runs at once: time and memory grow with B (10 000 digits took 220 s and 2 GB).
    message = (
        f"{signature}: seeds must hold at most {MAX_SAMPLE_BATCH} rows, one image each (send more as several "
        "requests); received shape"
    )
    capped = tf.debugging.Assert(tf.size(seeds) <= MAX_SAMPLE_BATCH, [message, tf.shape(seeds)], summarize=16)
    with tf.control_dependencies([capped]):
        return tf.stack([tf.zeros_like(seeds), seeds], axis=1)


# ------------------------------------------------------------------ signatures
def _signature(*specs):
    """``tf.function`` with input signature ``specs``, without AutoGraph.

    The signatures have no tensor-dependent Python control flow, and AutoGraph
    would convert the source of all the model code they call (seconds per export).
    """
    return tf.function(input_signature=list(specs), autograph=False)


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

        @_signature(float_images)
        def from_float(images):
            return outputs(model.energy(_checked_images(images, image_shape, signature)))

        @_signature(uint8_images)
        def from_uint8(images):
            where = f"{signature}_uint8: images"
            return outputs(model.energy(uint8_to_model_range(_checked_shape(images, image_shape, where))))

        return {signature: from_float, f"{signature}_uint8": from_uint8}

    @_signature(seeds_spec)
    def sample(seeds):
        return {"images": model.sample_with_seeds(_row_seeds(seeds, "sample"), config)}

    @_signature(latents_spec, seeds_spec)
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

    @_signature(latents_spec)
    def generate(latents):
        return {"images": model.generate(_checked_latents(latents, latent_shape, "generate"))}

    @_signature(seeds_spec)
    def sampler_config(seeds):
        # One copy per seed: TF Serving's batching merges requests along dimension 0.
        seeds = _checked_shape(seeds, (), "sampler_config: seeds")
        return {"json": tf.fill(tf.shape(seeds), sampler_json(config))}

    functions = {**energy_of("energy", "energy"), **energy_of("ood_score", "score")}
    if calibration is not None:
        functions.update(energy_of("ood_detect", head=calibration.detect))
    functions["sample"] = sample
    if model.mode.joint:
        functions["refine"] = refine
    functions["generate"] = generate
    functions["sampler_config"] = sampler_config
    return functions


def build_serving_module(model, sampler=None, calibration=None):
    """A ``tf.Module`` holding the signature functions and the variables they read.

    Only the networks' variables (and the calibration's) are saved, not the
    training banks or optimizer state. The functions are not traced here:
    ``tf.saved_model.save`` traces each once, in its save context; a trace
    made before it would not be reused there, and the save would trace the
    whole sampler again.

    Args:
        model: a trained ``HatEBM``.
        sampler: ``LangevinConfig`` baked into ``sample`` and ``refine``
            (default: ``model.sampler_config``).
        calibration: ``OODCalibration`` behind ``ood_detect`` (attribute
            ``ood_calibration`` of the module), or None.

    Returns:
        ``(module, signatures)``: signatures maps each name (and
        ``serving_default``) to a ``tf.function`` with its input signature.
    """
    module, detector = tf.Module(), None
    if calibration is not None:
        module.ood_calibration = detector = CalibrationModule(calibration)
    signatures = serving_functions(model, sampler, detector)
    for name, function in signatures.items():
        setattr(module, name, function)
    # The tf.Variables behind the Keras variables, which are what the functions
    # capture: TF Serving's loader finds a captured variable only when it is saved itself.
    module.serving_variables = [weight.value for weight in (*model.hat.weights, *model.generator.weights)]
    signatures["serving_default"] = signatures["ood_score"]
    return module, signatures
