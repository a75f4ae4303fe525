"""Section 2: FLOPs of a Langevin step, achieved GFLOP/s, and generator calls inside the loop."""

import contextlib
import io
import re

import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2
from tensorflow.python.util import deprecation

from hat_ebm_tf.benchmarks.common import build_networks, chain_function, joint_config, synthesis_config

WHILE_OPS = ("While", "StatelessWhile")
CALL_OPS = ("PartitionedCall", "StatefulPartitionedCall")


def input_gradient(fn, value):
    """``∂/∂value Σ fn(value)``: the gradient one Langevin update needs."""
    with tf.GradientTape() as tape:
        tape.watch(value)
        total = tf.reduce_sum(fn(value))
    return tape.gradient(total, value)


def step_function(hat, generator, settings, joint):
    """The concrete function of one Langevin step's network work (no noise, clipping or state update).

    Synthesis: ``∂/∂y Σ H(base + y)``. Joint: ``∂/∂z Σ H(G(z) + y)``, then
    ``base = G(z)``, then ``∂/∂y Σ H(base + y)``, with ``G(z)`` evaluated once
    and kept for the residual gradient, as the sampler's loop evaluates it
    once per step (``generator_in_loop`` reports how often it does).
    """
    image = tf.TensorSpec((settings.batch, *settings.image_shape), tf.float32)
    latent = tf.TensorSpec((settings.batch, settings.latent_dim), tf.float32)

    def residual_step(base, y):
        return input_gradient(lambda v: hat(base + v), y)

    def joint_step(z, y):
        with tf.GradientTape() as tape:
            tape.watch(z)
            base = generator(z)
            energy = tf.reduce_sum(hat(base + y))
        return tape.gradient(energy, z), residual_step(base, y)

    # No tensor-dependent Python control flow here, so no AutoGraph either.
    if joint:
        return tf.function(joint_step, autograph=False).get_concrete_function(latent, image)
    return tf.function(residual_step, autograph=False).get_concrete_function(image, image)


def pruned_graph(concrete):
    """``concrete`` frozen and pruned, imported into a fresh ``tf.Graph``.

    The graph is frozen (weights become constants, so they are not inputs),
    pruned to the ops the outputs depend on (tracing under a tape also leaves
    weight-gradient ops that never run) and re-imported into a fresh graph,
    whose static shapes the profiler's per-op FLOP formulas need.

    Returns:
        ``(graph, input tensor names, output tensor names)``.

    Raises:
        RuntimeError: the pruned graph still calls functions, whose ops the
            profiler would not count.
    """
    frozen = convert_variables_to_constants_v2(concrete)
    outputs = [tensor.op.name for tensor in frozen.outputs]
    with deprecation.silence():
        pruned = tf.compat.v1.graph_util.extract_sub_graph(frozen.graph.as_graph_def(), outputs)
    calls = sorted({node.op for node in pruned.node if node.op in CALL_OPS})
    if calls:
        raise RuntimeError(f"the frozen step graph still has function calls {calls}: FLOPs would be undercounted")
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(pruned, name="")
    return graph, [t.name for t in frozen.inputs], [t.name for t in frozen.outputs]


def profile_flops(graph):
    """TensorFlow's profiler FLOP count of ``graph``: ``(total, {node name: FLOPs})``."""
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    messages = io.StringIO()
    with deprecation.silence(), contextlib.redirect_stderr(messages):
        profile = tf.compat.v1.profiler.profile(graph, options=options)
    # Ops whose shapes are not static are skipped by the profiler, which says
    # so on stderr; every shape of the step graph is static, so it is an error.
    if "incomplete shapes" in messages.getvalue():
        raise RuntimeError(f"the FLOP count skipped ops: {messages.getvalue().strip()}")
    return int(profile.total_float_ops), {child.name: int(child.total_float_ops) for child in profile.children}


def count_flops(concrete):
    """Floating-point operations of one call of ``concrete``, by TensorFlow's profiler (see ``pruned_graph``)."""
    return profile_flops(pruned_graph(concrete)[0])[0]


def achieved_rate(flops_per_step, timing, matmul):
    """GFLOP/s a sampler timing achieves, and its ratio to the matmul's."""
    gflops = flops_per_step * timing["steps_per_s"] / 1e9
    return {
        "flops_per_step": flops_per_step,
        "steps_per_s": timing["steps_per_s"],
        "achieved_gflops_per_s": gflops,
        "ratio_to_matmul": gflops / matmul["gflops_per_s"],
    }


class CountingGenerator:
    """A generator wrapper that records the graph each of its calls is traced into."""

    def __init__(self, generator):
        self.generator = generator
        self.graphs = []

    def __call__(self, latents):
        self.graphs.append(tf.compat.v1.get_default_graph())
        return self.generator(latents)


def _functions_reached(library, roots):
    """Names of ``roots`` and of every function of ``library`` (name → FunctionDef) they call, transitively."""
    reached, pending = set(), list(roots)
    while pending:
        name = pending.pop()
        if name in reached or name not in library:
            continue
        reached.add(name)
        for node in library[name].node_def:
            for value in node.attr.values():
                pending.extend([value.func.name, *(f.name for f in value.list.func)])
    return reached


def generator_ops_in_loop(graph_def, generator_name):
    """Ops of the generator (and of its gradient) inside the sampler's while-loop body.

    Keras names a layer's ops ``<layer name>[_<n>]/...``, so a generator op
    has a path component matching the generator's name.
    """
    loops = [node for node in graph_def.node if node.op in WHILE_OPS]
    if len(loops) != 1:
        raise RuntimeError(f"expected one while loop in the traced sampler, found {len(loops)}")
    scope = re.compile(rf"{re.escape(generator_name)}(_\d+)?")
    library = {function.signature.name: function for function in graph_def.library.function}
    bodies = _functions_reached(library, [loops[0].attr["body"].func.name])
    return sum(
        any(scope.fullmatch(part) for part in node.name.split("/"))
        for name in bodies
        for node in library[name].node_def
    )


def generator_in_loop(settings, config):
    """Trace the sampler once and count generator evaluations inside and outside its loop.

    Two independent counts: the generator calls traced into a graph other than
    the function's own (the loop body is a nested graph), and the generator's
    ops found in the loop body. Each traced call in the body runs every step.
    """
    hat, generator = build_networks(settings)
    counting = CountingGenerator(generator)
    concrete = chain_function(hat, counting, settings, config).get_concrete_function()
    inside = sum(graph is not concrete.graph for graph in counting.graphs)
    return {
        "calls_per_step_inside_loop": inside,
        "calls_outside_loop": len(counting.graphs) - inside,
        "generator_ops_in_loop_body": generator_ops_in_loop(concrete.graph.as_graph_def(), generator.name),
    }


def flop_figures(settings, sampler_float32, matmul):
    """Section 2: FLOPs per step and achieved rates of both forms, and the generator-in-loop check.

    Args:
        settings: ``Settings``.
        sampler_float32: section 1's float32 ``synthesis``/``joint`` timings.
        matmul: ``matmul_rate`` result.
    """
    hat, generator = build_networks(settings)
    result = {"matmul": matmul}
    for form, joint_form in (("synthesis", False), ("joint", True)):
        flops = count_flops(step_function(hat, generator, settings, joint_form))
        result[form] = achieved_rate(flops, sampler_float32[form], matmul)
    result["generator_in_loop"] = {
        "synthesis": generator_in_loop(settings, synthesis_config(settings.steps)),
        "joint": generator_in_loop(settings, joint_config(settings.steps)),
    }
    return result
