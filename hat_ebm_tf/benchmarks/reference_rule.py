"""Section ``reference``: our sampler against the reference's update rule, same weights, same process.

The reference update rule as docs/reference.md states it, written with our
networks' own layers but none of our speed-ups:

- unfolded networks: the hat pools after its 3×3 ``conv_2`` and 1×1
  shortcuts run where the reference runs them; the generator upsamples
  before its shortcut conv and runs batch norm as its own op;
- ``G(z)`` recomputed at every residual step, in synthesis too;
- the latent and the residual step each run their own forward pass of G and H
  (ours share one ``G(z)`` between a residual step and the next latent step).

Both samplers start from the same states and draw the same noise, so they
compute the same chains (``tests/test_benchmarks.py`` checks it); the timings
alternate with those of our sampler with the generator unfolded (before issue #16)
within one process.
"""

import statistics
import time

import tensorflow as tf
from keras import ops

from hat_ebm_tf.benchmarks.common import SEED, build_networks, chain_function, joint_config, synthesis_config
from hat_ebm_tf.benchmarks.flops import count_flops, input_gradient, step_function
from hat_ebm_tf.langevin_steps import LangevinResult, mean_drift_step, update_constants
from hat_ebm_tf.networks import BOTTOM_WIDTH, Generator
from hat_ebm_tf.rng import SALT_NOISE_LATENT, SALT_NOISE_RESIDUAL, row_normal, row_seeds
from hat_ebm_tf.sampler import initial_state

# Speedup goals of issue #16 (ours over the reference rule).
GOALS = {"synthesis": 3.0, "joint": 2.0}


def reference_hat(hat, images):
    """``hat(images)`` computed as the reference lays it out (docs/reference.md, hat network).

    Args:
        hat: a ``HatNetwork``.
        images: ``[B, H, W, C]`` in [-1, 1].

    Returns:
        ``[B, 1]`` energies.
    """
    x = images
    for block in hat.blocks:
        h = block.conv_2(ops.relu(block.conv_1(x if block.stem else ops.relu(x))))
        shortcut = x
        if block.stem and block.downsample:
            shortcut = block.pool(shortcut)
        if block.sc is not None:
            shortcut = block.sc(shortcut)
        if block.downsample:
            h = block.pool(h)
            shortcut = shortcut if block.stem else block.pool(shortcut)
        x = h + shortcut
    return hat.head(ops.mean(ops.relu(x), axis=(1, 2)))


def _reference_up_block(block, x):
    """An ``UpBlock`` on moving statistics, as the reference lays it out."""
    h = x if block.stem else ops.relu(block.bn_1(x, training=False))
    if block.upsample:
        h = block.up(h)
    h = block.conv_2(ops.relu(block.bn_2(block.conv_1(h), training=False)))
    shortcut = block.up(x) if block.upsample else x
    if block.sc is not None:
        shortcut = block.sc(shortcut)
    return h + shortcut


def reference_generator(generator, latents):
    """``generator(latents, training=False)`` as the reference lays it out (``Generator`` or ``RetrofitDecoder``).

    Args:
        generator: a ``Generator`` or ``RetrofitDecoder``.
        latents: ``[B, *generator.latent_shape]``.

    Returns:
        ``[B, H, W, C]`` images in [-out_factor, out_factor].
    """
    h = latents
    if isinstance(generator, Generator):
        h = ops.reshape(generator.lin(h), (-1, generator.width, BOTTOM_WIDTH, BOTTOM_WIDTH))
        h = ops.transpose(h, (0, 2, 3, 1))
    for block in generator.blocks:
        h = _reference_up_block(block, h)
    h = generator.conv(ops.relu(generator.bn(h, training=False)))
    return ops.tanh(h) * generator.out_factor


def reference_langevin(hat, generator, latents, residuals, seeds, config):
    """The reference's Langevin update rule (docs/reference.md, one step), with our noise streams.

    Each step: a latent step (joint form) with its own ``G(z)`` and ``H``
    forward passes, then a residual step that recomputes ``G(z)`` at the
    updated ``z``. Arguments and result as ``hat_ebm_tf.sampler.langevin``.
    """
    temperature, half_eps_sq, half_eps_z_sq, clip = update_constants(config)

    def energy(z, y):
        return tf.reduce_sum(reference_hat(hat, reference_generator(generator, z) + y)) / temperature

    def body(step, z, y, norm_z, norm_y):
        if config.update_latents:
            with tf.GradientTape() as tape:
                tape.watch(z)
                total = energy(z, y)
            g = tape.gradient(total, z)
            z = z - half_eps_z_sq * g
            if config.noise:
                z = z + config.latent_step_size * row_normal(seeds, z.shape[1:], SALT_NOISE_LATENT, step)
            norm_z += mean_drift_step(half_eps_z_sq, g)
        with tf.GradientTape() as tape:
            tape.watch(y)
            total = energy(z, y) + config.tau * tf.reduce_sum(tf.square(y))
        g = tape.gradient(total, y)
        if clip is not None:
            g = tf.clip_by_norm(g, clip, axes=[1, 2, 3])
        y = y - half_eps_sq * g
        if config.noise:
            y = y + config.step_size * row_normal(seeds, y.shape[1:], SALT_NOISE_RESIDUAL, step)
        return step + 1, z, y, norm_z, norm_y + mean_drift_step(half_eps_sq, g)

    zero = tf.constant(0.0, tf.float32)
    state = (tf.constant(0, tf.int32), tf.convert_to_tensor(latents), tf.convert_to_tensor(residuals), zero, zero)
    _, z, y, norm_z, norm_y = tf.while_loop(lambda step, *_: step < config.num_steps, body, state)
    steps = float(max(config.num_steps, 1))
    accepted = tf.ones([tf.shape(y)[0]])  # unadjusted: every move is taken
    return LangevinResult(
        z, y, reference_generator(generator, z) + y, norm_z / steps, norm_y / steps, accepted, accepted
    )


def reference_function(hat, generator, settings, config):
    """A ``tf.function`` of the reference rule from ``chain_function``'s states and seeds; it returns the images."""
    seeds = row_seeds(SEED, settings.batch)
    latents, residuals = initial_state(seeds, (settings.latent_dim,), settings.image_shape, config)
    return tf.function(lambda: reference_langevin(hat, generator, latents, residuals, seeds, config).images)


def reference_step_function(hat, generator, settings, joint):
    """The concrete function of one step of the reference rule's network work, for FLOP counting.

    The counterpart of ``hat_ebm_tf.benchmarks.flops.step_function``: the
    residual gradient recomputes ``G(z)`` (in synthesis too), and in the joint
    form the latent gradient runs its own ``G`` and ``H`` forward passes.
    Networks are laid out as ``reference_generator`` and ``reference_hat``.
    """
    image = tf.TensorSpec((settings.batch, *settings.image_shape), tf.float32)
    latent = tf.TensorSpec((settings.batch, settings.latent_dim), tf.float32)

    def residual_step(z, y):
        base = reference_generator(generator, z)
        return input_gradient(lambda v: reference_hat(hat, base + v), y)

    def joint_step(z, y):
        return input_gradient(lambda v: reference_hat(hat, reference_generator(generator, v) + y), z), residual_step(
            z, y
        )

    return tf.function(joint_step if joint else residual_step, autograph=False).get_concrete_function(latent, image)


def flop_ratio(hat, generator, settings, joint):
    """FLOPs of one step of the reference rule over ours: the speedup if both ran at the same GFLOP/s.

    Our sampler's speedup beyond this ratio can only come from running its
    operations faster (kernels, precision), not from doing less arithmetic.
    """
    reference = count_flops(reference_step_function(hat, generator, settings, joint))
    return reference / count_flops(step_function(hat, generator, settings, joint))


def alternated_times(functions, repeats, warmup):
    """Time each of ``functions`` (name → blocking call) ``repeats`` times, alternating their order.

    Repeat ``r`` runs them in order, or reversed when ``r`` is odd, so that
    both meet the same drift of a shared machine's load.

    Returns:
        ``{name: [seconds, ...]}``.
    """
    for fn in functions.values():
        for _ in range(warmup):
            fn()
    names, times = list(functions), {name: [] for name in functions}
    for repeat in range(repeats):
        for name in names if repeat % 2 == 0 else names[::-1]:
            start = time.perf_counter()
            functions[name]()
            times[name].append(time.perf_counter() - start)
    return times


def reference_comparison(settings):
    """Section ``reference``: per form, the samplers' median seconds and speedups.

    Three samplers alternate: ours; ours with the generator run unfolded
    (``reference_generator``: batch norm as its own op, shortcut convs after
    the upsampling; the generator before issue #16); and the reference rule.

    Returns:
        dict per form (``synthesis``, ``joint``): ``ours``,
        ``ours_unfolded_generator`` and ``reference`` (``median_s``,
        ``times``, ``steps_per_s``); ``speedup`` (reference median / ours),
        ``pair_speedups`` (per alternated repeat), ``fold_speedup`` (unfolded
        generator median / ours), ``flop_ratio`` (``flop_ratio``: the
        speedup at equal GFLOP/s) and ``goal``.
    """
    hat, generator = build_networks(settings)
    results = {}
    for form, config in (("synthesis", synthesis_config(settings.steps)), ("joint", joint_config(settings.steps))):
        samplers = {
            "ours": chain_function(hat, generator, settings, config),
            "ours_unfolded_generator": chain_function(
                hat, lambda z: reference_generator(generator, z), settings, config
            ),
            "reference": reference_function(hat, generator, settings, config),
        }
        times = alternated_times(
            {name: lambda fn=fn: fn().numpy() for name, fn in samplers.items()}, settings.repeats, settings.warmup
        )
        figures = {
            name: {
                "median_s": statistics.median(spent),
                "times": spent,
                "steps_per_s": settings.steps / statistics.median(spent),
            }
            for name, spent in times.items()
        }
        pairs = [ref / own for own, ref in zip(times["ours"], times["reference"], strict=True)]
        results[form] = {
            **figures,
            "speedup": figures["reference"]["median_s"] / figures["ours"]["median_s"],
            "pair_speedups": pairs,
            "fold_speedup": figures["ours_unfolded_generator"]["median_s"] / figures["ours"]["median_s"],
            "flop_ratio": flop_ratio(hat, generator, settings, form == "joint"),
            "goal": GOALS[form],
        }
    return results
