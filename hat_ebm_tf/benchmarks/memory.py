"""Section 5: peak resident memory of a long and a short Langevin chain, each in a fresh process.

The parent (``memory_figures``) runs ``python -m hat_ebm_tf.benchmarks.memory --settings
JSON --steps N`` once per chain length; the child builds the benchmark
networks, runs one synthesis chain of N steps and prints one JSON line. A
fresh process per chain keeps one chain's allocations out of the other's peak.

The peak is the child's ``VmHWM`` (``/proc/self/status``), the high-water
mark of its own address space. ``getrusage(RUSAGE_SELF).ru_maxrss`` is
recorded too but not used: Linux carries the spawning process's peak across
fork and exec into it, so every child would report at least the parent's
peak (about 1 GB once the parent has trained), whatever its chain length.
"""

import argparse
import dataclasses
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

from hat_ebm_tf.benchmarks.common import Settings, build_networks, chain_function, synthesis_config

# The directory holding the `hat_ebm_tf` package: the child runs from there,
# so that it imports the same copy of the package as its parent.
PACKAGE_PARENT = Path(__file__).resolve().parents[2]
STDERR_TAIL = 3000


def resident_mib():
    """Current resident set size in MiB (``/proc/self/statm``: pages, second field)."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_resident_mib():
    """Peak resident set size of this process's address space since exec, in MiB (``VmHWM``)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    raise RuntimeError("/proc/self/status has no VmHWM line")


def ru_maxrss_mib():
    """``getrusage(RUSAGE_SELF).ru_maxrss`` in MiB (KiB on Linux); includes the spawning parent's peak."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def chain_memory(settings, steps):
    """Child side: RSS before, and peak RSS after, one float32 synthesis chain of ``steps`` steps."""
    hat, generator = build_networks(settings)
    run = chain_function(hat, generator, settings, synthesis_config(steps))
    # Trace first: the traced graph is the same for any chain length, so the
    # increment below is the chain's execution only.
    run.get_concrete_function()
    before = resident_mib()
    run().numpy()
    peak = peak_resident_mib()
    return {
        "steps": steps,
        "rss_before_mib": before,
        "peak_rss_mib": peak,
        "increment_mib": peak - before,
        "ru_maxrss_mib": ru_maxrss_mib(),
    }


def run_child(settings, steps):
    """Parent side: one child's figures, or a RuntimeError with the tail of its stderr."""
    command = [
        sys.executable,
        "-m",
        "hat_ebm_tf.benchmarks.memory",
        "--settings",
        json.dumps(dataclasses.asdict(settings)),
        "--steps",
        str(steps),
    ]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    child = subprocess.run(command, cwd=PACKAGE_PARENT, env=env, capture_output=True, text=True, check=False)
    lines = [line for line in child.stdout.splitlines() if line.startswith("{")]
    if child.returncode != 0 or not lines:
        outcome = f"exited with {child.returncode}" + ("" if lines else " without printing a JSON line")
        raise RuntimeError(
            f"memory benchmark child ({steps} steps) {outcome}; its stderr ends:\n{child.stderr[-STDERR_TAIL:]}"
        )
    return json.loads(lines[-1])


def memory_figures(settings):
    """Section 5: both chains' figures and the ratio of their peaks (long / short)."""
    long_steps, short_steps = settings.memory_steps
    long, short = run_child(settings, long_steps), run_child(settings, short_steps)
    return {"long": long, "short": short, "peak_ratio": long["peak_rss_mib"] / short["peak_rss_mib"]}


def main(argv=None):
    """Child entry point: print one JSON line of ``chain_memory``."""
    parser = argparse.ArgumentParser(prog="python -m hat_ebm_tf.benchmarks.memory", description=__doc__.splitlines()[0])
    parser.add_argument("--settings", required=True, help="JSON of the parent's Settings")
    parser.add_argument("--steps", type=int, required=True, help="chain length")
    args = parser.parse_args(argv)
    settings = Settings(**json.loads(args.settings))
    print(json.dumps(chain_memory(settings, args.steps)))


if __name__ == "__main__":
    main()
