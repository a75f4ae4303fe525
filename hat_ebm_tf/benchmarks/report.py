"""The human-readable table of a benchmark run, and its targets (reported, never asserted)."""

import dataclasses
import itertools
import operator

from hat_ebm_tf.benchmarks.ops import TOP_OPS
from hat_ebm_tf.benchmarks.reference_rule import GOALS
from hat_ebm_tf.benchmarks.sampler_speed import MATMUL_MIN_REPEATS

SECTION_TITLES = {
    "langevin": "Langevin sampler throughput",
    "flops": "FLOPs per step and achieved rate vs a 2048×2048 float32 matmul",
    "reference": "our sampler against the reference update rule (same weights and states, alternated repeats)",
    "jit": "XLA (jit_compile) on the float32 synthesis sampler",
    "train": "training steps/s (model.fit, one step = sampler + both updates)",
    "memory": "peak resident memory of one chain (fresh process per chain)",
    "ops": "where a synthesis step's time goes (hat forward + input gradient, per op type, traced)",
}
COLUMNS = ("figure", "value", "unit", "ratio, target or note", "status")
FORMS = ("synthesis", "joint")


COMPARISONS = {">=": (operator.ge, "≥"), "<=": (operator.le, "≤"), "==": (operator.eq, "=")}


@dataclasses.dataclass(frozen=True)
class Target:
    """A bound a figure should meet: ``value <comparison> bound``."""

    comparison: str
    bound: float

    def met(self, value):
        return COMPARISONS[self.comparison][0](value, self.bound)

    def __str__(self):
        bound = self.bound if isinstance(self.bound, int) else f"{self.bound:.2f}"
        return f"target {COMPARISONS[self.comparison][1]} {bound}"


TARGETS = {
    "synthesis_matmul_ratio": Target(">=", 0.80),
    "generator_calls_in_synthesis_loop": Target("==", 0),
    "generator_ops_in_synthesis_loop_body": Target("==", 0),
    "memory_peak_ratio": Target("<=", 1.10),
    **{f"{form}_speedup_over_reference": Target(">=", goal) for form, goal in GOALS.items()},
}


@dataclasses.dataclass(frozen=True)
class Row:
    """One line of the table.

    Attributes:
        figure: what is measured.
        value: the figure, or None when it could not be measured.
        unit: its unit.
        note: a ratio or remark.
        target: key of ``TARGETS`` checked against ``checked``, if any.
        checked: the value the target is checked on (default: ``value``).
    """

    figure: str
    value: float | None
    unit: str = ""
    note: str = ""
    target: str | None = None
    checked: float | None = None

    def status(self):
        if self.target is None:
            return ""
        value = self.value if self.checked is None else self.checked
        return "PASS" if value is not None and TARGETS[self.target].met(value) else "MISS"


def format_value(value):
    if value is None:
        return "—"
    if isinstance(value, int):
        return str(value)
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def _rate_rows(label, timing):
    return [
        Row(label, timing["steps_per_s"], "steps/s"),
        Row(label, timing["images_steps_per_s"], "images·steps/s"),
    ]


def langevin_rows(result):
    rows = [row for form in FORMS for row in _rate_rows(f"{form} float32", result["float32"][form])]
    mixed = result["mixed"]
    if mixed["policy"] is None:
        return [*rows, Row("mixed precision", None, note=f"skipped: {mixed['reason']}")]
    rows += [row for form in FORMS for row in _rate_rows(f"{form} {mixed['policy']}", mixed[form])]
    return [*rows, Row("mixed: hat energy dtype", None, note=f"{mixed['energy_dtype']} ({mixed['reason']})")]


def reference_rows(result):
    rows = []
    for form in FORMS:
        figures, target = result[form], f"{form}_speedup_over_reference"
        pairs = figures["pair_speedups"]
        rows += [
            Row(f"{form}: ours", figures["ours"]["steps_per_s"], "steps/s"),
            Row(
                f"{form}: ours, generator unfolded",
                figures["ours_unfolded_generator"]["steps_per_s"],
                "steps/s",
                f"ours is {figures['fold_speedup']:.2f}× this (the generator before #16)",
            ),
            Row(f"{form}: reference rule", figures["reference"]["steps_per_s"], "steps/s"),
            Row(
                f"{form}: FLOP ratio",
                figures["flop_ratio"],
                "×",
                "the reference rule's FLOPs per step over ours: the speedup at equal GFLOP/s",
            ),
            Row(
                f"{form}: speedup",
                figures["speedup"],
                "×",
                _with_target(f"per pair {min(pairs):.2f}–{max(pairs):.2f}", target),
                target,
            ),
        ]
    return rows


def _with_target(note, target):
    """``note`` followed by the target's bound, when there is one."""
    return "; ".join(part for part in (note, target and str(TARGETS[target])) if part)


# Targeted rows of the generator-in-loop check, per sampler form: (calls, ops).
GENERATOR_TARGETS = {
    "synthesis": ("generator_calls_in_synthesis_loop", "generator_ops_in_synthesis_loop_body"),
    "joint": (None, None),
}


def flops_rows(result):
    rows = [Row("matmul 2048×2048 float32", result["matmul"]["gflops_per_s"], "GFLOP/s")]
    for form in FORMS:
        figures = result[form]
        ratio = figures["ratio_to_matmul"]
        target = "synthesis_matmul_ratio" if form == "synthesis" else None
        rows += [
            Row(f"{form}: FLOPs per Langevin step", figures["flops_per_step"] / 1e9, "GFLOP"),
            Row(
                f"{form}: achieved",
                figures["achieved_gflops_per_s"],
                "GFLOP/s",
                _with_target(f"{ratio:.2f} of matmul", target),
                target,
                ratio,
            ),
        ]
    for form, (calls_target, ops_target) in GENERATOR_TARGETS.items():
        counts = result["generator_in_loop"][form]
        outside = f"{counts['calls_outside_loop']} call(s) outside the loop"
        rows += [
            Row(
                f"generator evaluations inside {form} loop",
                counts["calls_per_step_inside_loop"],
                "per step",
                _with_target(outside, calls_target),
                calls_target,
            ),
            Row(
                f"generator ops in {form} loop body",
                counts["generator_ops_in_loop_body"],
                "ops",
                _with_target("", ops_target),
                ops_target,
            ),
        ]
    return rows


def jit_rows(result):
    on = result["on"]
    rows = [Row("synthesis float32, jit_compile=False", result["off"]["steps_per_s"], "steps/s")]
    if "error" in on:
        return [*rows, Row("synthesis float32, jit_compile=True", None, "steps/s", f"XLA failed: {on['error']}")]
    return [
        *rows,
        Row("synthesis float32, jit_compile=True", on["steps_per_s"], "steps/s"),
        Row("XLA speedup (on / off)", result["speedup"], "×"),
    ]


def train_rows(result):
    rows = []
    for name, figures in result.items():
        sizes = (
            f"width {figures['hat_width']}, batch {figures['batch_size']}, "
            f"{figures['sampler_steps']} Langevin steps, bank {figures['bank_size']}"
        )
        rows += [
            Row(f"{name}: training", figures["steps_per_s"], "steps/s", sizes),
            Row(
                f"{name}: Langevin inside training",
                figures["langevin_steps_per_s"],
                "steps/s",
                "steps/s × sampler steps",
            ),
        ]
    return rows


def memory_rows(result):
    rows = []
    for key in ("long", "short"):
        chain = result[key]
        rows += [
            Row(f"peak RSS, {chain['steps']}-step chain", chain["peak_rss_mib"], "MiB", "VmHWM of the child"),
            Row(f"RSS before the {chain['steps']}-step chain", chain["rss_before_mib"], "MiB"),
            Row(f"chain increment, {chain['steps']} steps", chain["increment_mib"], "MiB", "peak − before"),
        ]
    ratio = result["peak_ratio"]
    label = f"peak ratio {result['long']['steps']} / {result['short']['steps']} steps"
    return [*rows, Row(label, ratio, "×", str(TARGETS["memory_peak_ratio"]), "memory_peak_ratio")]


def ops_rows(result):
    rows = [
        Row("step wall time, untraced", result["wall_ms"], "ms"),
        Row("sum of op times, traced", result["op_ms_total"], "ms", "ops overlap on the inter-op threads"),
    ]
    for op in result["ops"][:TOP_OPS]:
        rate = op["gflops_per_s"]
        note = f"{op['share']:.0%} of op time" + ("" if rate is None else f"; {rate:.0f} GFLOP/s")
        rows.append(Row(op["op"], op["ms"], "ms", note))
    return rows


ROW_BUILDERS = {
    "langevin": langevin_rows,
    "reference": reference_rows,
    "flops": flops_rows,
    "jit": jit_rows,
    "train": train_rows,
    "memory": memory_rows,
    "ops": ops_rows,
}


def section_rows(results):
    """``{section: [Row]}`` of the sections in ``results``, in run order."""
    return {name: build(results[name]) for name, build in ROW_BUILDERS.items() if name in results}


def target_summary(rows_by_section):
    """``{target key: {value, target, status}}`` of every targeted row."""
    return {
        row.target: {
            "value": row.value if row.checked is None else row.checked,
            "target": str(TARGETS[row.target]),
            "status": row.status(),
        }
        for rows in rows_by_section.values()
        for row in rows
        if row.target is not None
    }


def header_lines(settings, machine=None):
    s = settings
    cpu = []
    if machine is not None:
        flags = ", ".join(machine["cpu_flags"]) or "none of the listed ones"
        cpu = [f"CPU: {machine['cpu_model']}; vector flags found: {flags}"]
    return [
        f"Hat EBM benchmarks{' (--tiny smoke sizes: the figures are not meaningful)' if s.tiny else ''}",
        f"sampler: image {s.image_size}×{s.image_size}×{s.channels}, hat and generator width {s.width}, "
        f"latent {s.latent_dim}, batch {s.batch}, {s.steps} Langevin steps per call",
        f"timings are medians of {s.repeats} repeats after {s.warmup} warm-up calls "
        f"(matmul: {max(s.repeats, MATMUL_MIN_REPEATS)} repeats; training: {s.train_steps} steps "
        f"after {s.train_warmup} warm-up steps)",
        *cpu,
    ]


def notes(results):
    """Remarks printed under the table: what the figures do and do not include."""
    out = []
    if "flops" in results:
        out.append(
            "FLOPs are TensorFlow's profiler count of one step's network work (frozen graph pruned to the "
            "gradients); the noise, clipping and state updates are not counted"
        )
        joint_calls = results["flops"]["generator_in_loop"]["joint"]["calls_per_step_inside_loop"]
        if joint_calls != 1:
            out.append(
                f"the joint FLOP count assumes one G(z) evaluation per step, but the joint loop makes {joint_calls}"
            )
    for name, figures in results.get("train", {}).items():
        out.append(f"{name} trains on {figures['data']}")
    if "train" in results:
        out.append("bank size does not change the cost of a training step (a step gathers and scatters one batch)")
    if "memory" in results:
        out.append(
            "peak RSS is each child's VmHWM: its ru_maxrss (in the JSON) also holds the parent's peak, which "
            "Linux carries across fork and exec"
        )
    return out


def _cells(row):
    return [row.figure, format_value(row.value), row.unit, row.note, row.status()]


def format_table(settings, rows_by_section, remarks=(), machine=None):
    """The whole report: header, one block per section, remarks."""
    cells = {name: [_cells(row) for row in rows] for name, rows in rows_by_section.items()}
    every_row = [COLUMNS, *itertools.chain.from_iterable(cells.values())]
    widths = [max(len(cell) for cell in column) for column in zip(*every_row, strict=True)]

    def line(values):
        padded = [v.rjust(w) if i == 1 else v.ljust(w) for i, (v, w) in enumerate(zip(values, widths, strict=True))]
        return ("  " + "  ".join(padded)).rstrip()

    out = [*header_lines(settings, machine), ""]
    for name, section in cells.items():
        out += [f"[{name}] {SECTION_TITLES[name]}", line(COLUMNS), *(line(row) for row in section), ""]
    out += [f"note: {remark}" for remark in remarks]
    return "\n".join(out).rstrip() + "\n"
