"""Section ``ops``: where one synthesis Langevin step's time goes, per op type.

The step's network work (``flops.step_function``: hat forward and input
gradient) is frozen and pruned as for the FLOP count, then run in a v1
``Session`` with full tracing (``RunMetadata`` step stats: the TF profiler's
per-op timings). Grappler optimises that graph as it does the sampler's, so
the op types are the kernels that actually run (``_MklNative*`` are oneDNN's).
Ops can overlap on the 2 inter-op threads, so per-op times may add up to more
than the wall time of the step.
"""

import collections
import statistics
import time

import numpy as np
import tensorflow as tf

from hat_ebm_tf.benchmarks.common import build_networks
from hat_ebm_tf.benchmarks.flops import profile_flops, pruned_graph, step_function

TRACED_RUNS = 5
TOP_OPS = 8


def _op_type(node_stats):
    """The kernel's op type from a step-stats node: its timeline label reads ``name = Type(inputs)``."""
    label = node_stats.timeline_label
    return label.split(" = ", 1)[1].split("(", 1)[0] if " = " in label else node_stats.node_name


def op_profile(settings):
    """Per-op-type time of one synthesis step and the GFLOP/s of the op types that do FLOPs.

    Returns:
        dict: ``wall_ms`` (median untraced step time), ``op_ms_total`` and
        ``ops``: a list, longest first, of ``{op, ms, share, gflops_per_s}``
        (``gflops_per_s`` None for op types the profiler counts no FLOPs for).
    """
    hat, generator = build_networks(settings)
    graph, inputs, outputs = pruned_graph(step_function(hat, generator, settings, joint=False))
    _, node_flops = profile_flops(graph)
    rng = np.random.default_rng(0)
    feed = {name: rng.uniform(-1.0, 1.0, graph.get_tensor_by_name(name).shape).astype(np.float32) for name in inputs}
    options = tf.compat.v1.RunOptions(trace_level=tf.compat.v1.RunOptions.FULL_TRACE)
    with tf.compat.v1.Session(graph=graph) as session:
        for _ in range(settings.warmup + 1):
            session.run(outputs, feed)
        walls = []
        for _ in range(settings.repeats):
            start = time.perf_counter()
            session.run(outputs, feed)
            walls.append(time.perf_counter() - start)
        micros, flops = collections.Counter(), collections.Counter()
        for _ in range(TRACED_RUNS):
            metadata = tf.compat.v1.RunMetadata()
            session.run(outputs, feed, options=options, run_metadata=metadata)
            for device in metadata.step_stats.dev_stats:
                for node in device.node_stats:
                    kind = _op_type(node)
                    micros[kind] += node.op_end_rel_micros
                    flops[kind] += node_flops.get(node.node_name, 0)
    total = sum(micros.values()) / TRACED_RUNS / 1e3
    ops = []
    for kind, spent in micros.most_common():
        ms = spent / TRACED_RUNS / 1e3
        rate = flops[kind] / (spent / 1e6) / 1e9 if flops[kind] and spent else None
        ops.append({"op": kind, "ms": ms, "share": ms / total if total else 0.0, "gflops_per_s": rate})
    return {"wall_ms": statistics.median(walls) * 1e3, "op_ms_total": total, "ops": ops}
