"""Sections 1 and 3: Langevin sampler throughput, mixed precision, XLA; and the reference matmul."""

import tensorflow as tf

from hat_ebm_tf.benchmarks.common import build_networks, chain_function, joint_config, median_time, synthesis_config
from hat_ebm_tf.precision import native_policy

MATMUL_SIZE = 2048
MATMUL_MIN_REPEATS = 10


def mixed_precision_policy(choice):
    """The mixed policy to time, or None, and why.

    Args:
        choice: ``auto`` (only where native, ``hat_ebm_tf.precision``),
            ``always`` (bfloat16 even where emulated) or ``never``.

    Returns:
        ``(policy name or None, reason)``.
    """
    if choice == "never":
        return None, "skipped by --mixed-precision never"
    policy, reason = native_policy()
    if policy != "float32":
        return policy, reason
    if choice == "always":
        return "mixed_bfloat16", f"forced by --mixed-precision always; {reason}"
    return None, reason


def rates(timing, steps, batch):
    """Add ``steps_per_s`` and ``images_steps_per_s`` to a ``median_time`` result."""
    steps_per_s = steps / timing["seconds"]
    return {**timing, "steps_per_s": steps_per_s, "images_steps_per_s": batch * steps_per_s}


def time_sampler(hat, generator, settings, config, jit_compile=False):
    """Median time of one batch of chains of ``config.num_steps`` steps, with its rates."""
    run = chain_function(hat, generator, settings, config, jit_compile=jit_compile)
    timing = median_time(lambda: run().numpy(), settings.repeats, settings.warmup)
    return rates(timing, config.num_steps, settings.batch)


def sampler_timings(settings, policy="float32"):
    """Synthesis and joint sampler timings with networks under ``policy``.

    Returns:
        dict: ``synthesis`` and ``joint`` timings, and ``energy_dtype``, the
        dtype the hat returns (the policy took hold in its layers if it is
        the policy's compute dtype).
    """
    hat, generator = build_networks(settings, policy)
    energy = hat(tf.zeros((1, *settings.image_shape)))
    return {
        "synthesis": time_sampler(hat, generator, settings, synthesis_config(settings.steps)),
        "joint": time_sampler(hat, generator, settings, joint_config(settings.steps)),
        "energy_dtype": energy.dtype.name,
    }


def mixed_timings(settings):
    """Section 1's mixed-precision half: timings, or the reason they were skipped."""
    policy, reason = mixed_precision_policy(settings.mixed_precision)
    result = {"policy": policy, "reason": reason}
    if policy is not None:
        result.update(sampler_timings(settings, policy))
    return result


def jit_comparison(settings, jit_off):
    """Section 3: the float32 synthesis sampler XLA-compiled, against ``jit_off`` (section 1's timing).

    An XLA failure is recorded as ``on.error`` rather than raised: it is a
    finding of the benchmark, not a fault of it.
    """
    hat, generator = build_networks(settings)
    try:
        jit_on = time_sampler(hat, generator, settings, synthesis_config(settings.steps), jit_compile=True)
    except Exception as err:  # XLA raises assorted errors (unsupported ops, compiler failures)
        first_line = (str(err).strip().splitlines() or [""])[0]
        return {"off": jit_off, "on": {"error": f"{type(err).__name__}: {first_line}"[:500]}, "speedup": None}
    return {"off": jit_off, "on": jit_on, "speedup": jit_on["steps_per_s"] / jit_off["steps_per_s"]}


def matmul_rate(settings):
    """GFLOP/s of a float32 ``2048×2048 @ 2048×2048`` matmul: what this device does on dense work."""
    a = tf.random.stateless_normal([MATMUL_SIZE, MATMUL_SIZE], seed=[1, 0])
    b = tf.random.stateless_normal([MATMUL_SIZE, MATMUL_SIZE], seed=[2, 0])
    product = tf.function(lambda: tf.matmul(a, b))
    timing = median_time(lambda: product().numpy(), max(settings.repeats, MATMUL_MIN_REPEATS), max(settings.warmup, 1))
    flops = 2 * MATMUL_SIZE**3
    return {**timing, "size": MATMUL_SIZE, "flops": flops, "gflops_per_s": flops / timing["seconds"] / 1e9}
