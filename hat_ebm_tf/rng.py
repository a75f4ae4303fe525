"""Per-row counter-based random numbers: row ``b``'s draws depend on ``seeds[b]`` only.

TensorFlow's stateless ops (``tf.random.stateless_normal``) take one seed per
call; drawing one stream per row with them needs ``tf.vectorized_map``, which
has no converter for them and falls back to a ``tf.while_loop`` over rows (a
1000-row, 800-step chain took 60 s on 2 CPU cores). Here every draw is a pure
function of ``(row seed, stream, element index)``, computed with vectorised
32-bit integer ops that run on CPU, GPU and TPU:

* a hash of the counter, ``lowbias32`` (an integer finaliser published by
  Chris Wellons, constants 0x7feb352d and 0x846ca68b), chained over the seed
  words, the stream and the element index;
* 24-bit uniforms in (0, 1), then Box–Muller for standard normals.

The same seed gives the same numbers on every device and in every batch.
``row_seeds`` gives rows their seeds, and ``row_normal`` and ``row_uniform``
draw a row's registered streams (the salts below) at a Langevin step.
"""

import math

import tensorflow as tf

_M1 = 0x7FEB352D
_M2 = 0x846CA68B

# Every random stream of a row seed, registered here so that no two share an id.
# A Langevin step's streams are ``step * STREAM_STRIDE + salt`` (``row_normal``),
# so the salts below STREAM_STRIDE are taken by the sampler's streams and by the
# streams drawn once per row (at step 0); streams of other models are negative.
STREAM_STRIDE = 8
SALT_INIT_LATENT = 1  # the chain's initial z (sampler.initial_state)
SALT_INIT_RESIDUAL = 2  # the chain's initial y
SALT_NOISE_LATENT = 3  # the latent Langevin noise, per step
SALT_NOISE_RESIDUAL = 4  # the residual Langevin noise, per step
SALT_DATA_NOISE = 5  # HatEBM.train_step: the data noise ε·N(0, I)
SALT_BANK_LATENTS = 7  # HatEBM.initialize_banks: the banks' latents
SALT_ACCEPT_LATENT = 0  # MALA's latent accept/reject uniforms, per step (hat_ebm_tf.mala)
SALT_ACCEPT_RESIDUAL = 6  # MALA's residual accept/reject uniforms, per step
STREAM_AUTOENCODER_NOISE = -1  # Autoencoder.train_step: the latent noise
# A training step's seed word is ``seed · P + step`` (``step_seed``): P is a prime far above any
# step count, so different (seed, step) pairs of a run never share a word.
_STEP_SEED_PRIME = 1_000_000_007


def step_seed(seed, step):
    """The seed word of training step ``step`` of a model seeded ``seed`` (int64 scalar tensor).

    ``HatEBM`` and ``Autoencoder`` seed row ``i`` of a step's global batch
    with ``(step_seed(seed, step), i)``, so that the step's draws depend on
    neither the replica count nor the batch split.
    """
    return tf.constant(seed, tf.int64) * _STEP_SEED_PRIME + tf.cast(step, tf.int64)


def _mix(x):
    """lowbias32: a bijective avalanche hash of uint32 values."""
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, tf.constant(16, tf.uint32)))
    x = x * tf.constant(_M1, tf.uint32)
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, tf.constant(15, tf.uint32)))
    x = x * tf.constant(_M2, tf.uint32)
    return tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, tf.constant(16, tf.uint32)))


def _combine(key, value):
    """Fold ``value`` into ``key`` (both uint32, broadcastable)."""
    return _mix(tf.bitwise.bitwise_xor(key, _premix(value)))


def _premix(value):
    """The hash of ``value`` that ``_combine`` folds in (uint32)."""
    return _mix(value + tf.constant(0x9E3779B9, tf.uint32))


def _words(x):
    """int64 ``[..., n]`` → uint32 ``[..., 2n]``: each value's (low, high) words, in that order."""
    low = tf.cast(tf.bitwise.bitwise_and(x, 0xFFFFFFFF), tf.uint32)
    high = tf.cast(tf.bitwise.bitwise_and(tf.bitwise.right_shift(x, 32), 0xFFFFFFFF), tf.uint32)
    return tf.reshape(tf.stack([low, high], axis=-1), [-1, 2 * x.shape[-1]])


def row_keys(seeds, stream):
    """One uint32 key per row from ``seeds`` ``[B, 2]`` (int) and a stream id (int64 scalar).

    The key folds six words into 0 with ``_combine``, in order: the low and
    high words of ``seeds[:, 0]``, of ``seeds[:, 1]`` and of ``stream``. The
    words' own hashes (``_premix``) do not depend on the key, so they are
    computed for all six at once; only the folds are a chain.

    Returns:
        ``[B, 1]`` uint32.
    """
    seeds = tf.cast(seeds, tf.int64)
    streams = tf.fill(tf.shape(seeds[:, :1]), tf.cast(stream, tf.int64))
    hashed = _premix(_words(tf.concat([seeds, streams], axis=1)))  # [B, 6]
    key = _mix(hashed[:, 0])  # the first fold, into a key of 0
    for i in range(1, 6):
        key = _mix(tf.bitwise.bitwise_xor(key, hashed[:, i]))
    return key[:, None]


def row_uniform_bits(seeds, stream, size):
    """``[B, size]`` uint32 random words; row ``b`` depends on ``seeds[b]`` and ``stream`` only."""
    counter = tf.range(size, dtype=tf.int32)
    return _combine(row_keys(seeds, stream), tf.cast(counter, tf.uint32)[None, :])


def _unit_interval(bits):
    """uint32 → float32 uniform on the open interval (0, 1), 24-bit resolution."""
    top = tf.cast(tf.bitwise.right_shift(bits, tf.constant(8, tf.uint32)), tf.float32)
    return (top + 0.5) * (1.0 / 16777216.0)


def stateless_row_uniform(seeds, stream, size):
    """Uniforms ``[B, size]`` float32 in (0, 1), row ``b`` keyed on ``(seeds[b], stream)``."""
    return _unit_interval(row_uniform_bits(seeds, stream, size))


def stateless_row_normal(seeds, stream, shape):
    """Standard normals ``[B, *shape]`` float32, row ``b`` keyed on ``(seeds[b], stream)``.

    Args:
        seeds: ``[B, 2]`` integer seeds, one per row.
        stream: int64 scalar (tensor) naming an independent stream of each row.
        shape: static per-row shape.
    """
    shape = tf.TensorShape(shape)
    size = shape.num_elements()
    half = (size + 1) // 2
    bits = row_uniform_bits(seeds, stream, 2 * half)
    # Pad each row to a multiple of 64 columns: Eigen evaluates log/sin/cos in
    # SIMD packets but a tensor's tail with scalar code (1-ulp different), so
    # without padding a row's values could depend on the batch size.
    pad = [[0, 0], [0, -half % 64]]
    u1 = tf.pad(_unit_interval(bits[:, :half]), pad, constant_values=0.5)
    u2 = tf.pad(_unit_interval(bits[:, half:]), pad, constant_values=0.5)
    radius = tf.sqrt(-2.0 * tf.math.log(u1))
    angle = (2.0 * math.pi) * u2
    normals = tf.concat([(radius * tf.cos(angle))[:, :half], (radius * tf.sin(angle))[:, :half]], axis=1)[:, :size]
    return tf.reshape(normals, [-1, *shape.as_list()])


def row_seeds(seed, num_rows, offset=0):
    """Per-row seeds ``[num_rows, 2]`` int64: row ``i`` gets ``(seed, offset + i)``.

    Rows keep their seed whatever batch they are drawn in, so chain ``i`` of a
    ``sample(n, seed)`` call is the same for any batch split.
    """
    seed = tf.cast(seed, tf.int64)
    rows = tf.range(num_rows, dtype=tf.int64) + tf.cast(offset, tf.int64)
    return tf.stack([tf.fill([num_rows], seed), rows], axis=1)


def row_normal(seeds, shape, salt, step=0):
    """Standard normal noise ``[B, *shape]`` float32, row ``b`` keyed on ``seeds[b]``.

    Args:
        seeds: ``[B, 2]`` integer seeds, one per row.
        shape: static per-row shape.
        salt: integer separating independent streams of one row.
        step: integer (tensor) separating Langevin steps.
    """
    return stateless_row_normal(seeds, _stream(salt, step), shape)


def row_uniform(seeds, salt, step=0):
    """One uniform ``[B]`` float32 in (0, 1) per row, row ``b`` keyed on ``seeds[b]`` (arguments as ``row_normal``)."""
    return stateless_row_uniform(seeds, _stream(salt, step), 1)[:, 0]


def _stream(salt, step):
    """The stream id of a (salt, step) pair (the salts are registered above, all < ``STREAM_STRIDE``)."""
    return tf.cast(step, tf.int64) * STREAM_STRIDE + salt
