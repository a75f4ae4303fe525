"""The benchmark driver: run the chosen sections, print the table, write the JSON.

Targets are reported, not asserted: the run exits 0 when a target is missed,
and non-zero only when a benchmark fails to run.
"""

import dataclasses
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

import keras
import tensorflow as tf
from tensorflow.python.util import _pywrap_util_port

from hat_ebm_tf.benchmarks.common import Settings
from hat_ebm_tf.benchmarks.flops import flop_figures
from hat_ebm_tf.benchmarks.memory import memory_figures
from hat_ebm_tf.benchmarks.ops import op_profile
from hat_ebm_tf.benchmarks.reference_rule import reference_comparison
from hat_ebm_tf.benchmarks.report import format_table, notes, section_rows, target_summary
from hat_ebm_tf.benchmarks.sampler_speed import (
    jit_comparison,
    matmul_rate,
    mixed_timings,
    sampler_timings,
)
from hat_ebm_tf.benchmarks.train_speed import training_figures
from hat_ebm_tf.errors import RunDirError
from hat_ebm_tf.outputs import check_writable_dir
from hat_ebm_tf.precision import BF16_CPU_FLAGS, REPORTED_CPU_FLAGS, cpu_info

# Environment variables that change what oneDNN, OpenMP or XLA do on this machine.
ENVIRONMENT_PREFIXES = ("TF_ENABLE_ONEDNN_OPTS", "ONEDNN_", "DNNL_", "OMP_", "KMP_", "TF_XLA_FLAGS")


def progress(message):
    """Progress goes to stderr, so that stdout holds the table only."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def machine_info():
    """The machine and software the figures were measured on."""
    model, flags = cpu_info()
    return {
        "cpu_model": model,
        "cpu_count": os.cpu_count(),
        "cpus_available": len(os.sched_getaffinity(0)),
        "bf16_cpu_flags": sorted(flags & set(BF16_CPU_FLAGS)),
        "cpu_flags": [flag for flag in REPORTED_CPU_FLAGS if flag in flags],
        "gpus": [device.name for device in tf.config.list_physical_devices("GPU")],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "onednn_enabled": bool(_pywrap_util_port.IsMklEnabled()),
        "environment": {key: value for key, value in os.environ.items() if key.startswith(ENVIRONMENT_PREFIXES)},
        "threads": {
            "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
        },
    }


def measure(settings):
    """Run the sections of ``settings.sections``; ``{section: figures}``."""
    sections, results = settings.sections, {}
    # Section 1's float32 timings also feed the achieved FLOP rate (2) and the
    # jit-off figure (3), so they are measured once for all three.
    sampler_float32 = None
    if {"langevin", "flops", "jit"} & set(sections):
        progress("float32 sampler (synthesis, joint)")
        sampler_float32 = sampler_timings(settings)
    if "langevin" in sections:
        progress("mixed-precision sampler")
        results["langevin"] = {"float32": sampler_float32, "mixed": mixed_timings(settings)}
    if "reference" in sections:
        progress("our sampler against the reference update rule (alternated)")
        results["reference"] = reference_comparison(settings)
    if "flops" in sections:
        progress("matmul reference, FLOP counts, generator-in-loop check")
        results["flops"] = flop_figures(settings, sampler_float32, matmul_rate(settings))
    if "jit" in sections:
        progress("XLA-compiled sampler")
        results["jit"] = jit_comparison(settings, sampler_float32["synthesis"])
    if "train" in sections:
        progress("training steps")
        results["train"] = training_figures(settings)
    if "ops" in sections:
        progress("per-op profile of a synthesis step")
        results["ops"] = op_profile(settings)
    if "memory" in sections:
        progress(f"memory of {' and '.join(map(str, settings.memory_steps))}-step chains")
        results["memory"] = memory_figures(settings)
    return results


def run_benchmarks(args):
    """Run the benchmarks of parsed ``hat_ebm_tf.cli.commands.bench`` flags; print the table, write ``args.out``."""
    settings = Settings.from_args(args)
    out = Path(args.out)
    check_writable_dir(out.parent, "--out")  # before minutes of measuring
    if out.is_dir():
        raise RunDirError(f"--out {os.fspath(out)}: a directory; give a file name")
    started = time.perf_counter()
    timestamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    results = measure(settings)
    rows = section_rows(results)
    remarks = notes(results)
    document = {
        "timestamp": timestamp,
        "duration_s": time.perf_counter() - started,
        "settings": {**dataclasses.asdict(settings), "image_shape": list(settings.image_shape)},
        "machine": machine_info(),
        "results": results,
        "targets": target_summary(rows),
        "notes": remarks,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=1) + "\n")
    print(format_table(settings, rows, remarks, document["machine"]), end="")
    print(f"\nwrote {out} ({document['duration_s']:.0f} s)")
