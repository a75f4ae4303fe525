"""The grid of ``hat-ebm grid``: the recipe of ``hat-ebm train --data`` trained on data sets of every kind, offline.

Every set is made from what the installed packages ship (``hat_ebm_tf.offline_sets``
and scikit-learn's digits), so anyone can rerun it. Each run trains the
derived recipe to its step budget, keeps that stage's report
(``quality_1x.json``, ``samples_1x.png``), and, with ``steps_factor`` above 1,
goes on training the same run to that multiple of the budget: the check that
the recipe stays stable well past its budget. The sets the recipe was
developed on are marked ``tuned``; the others (``held out``) were not looked
at until it was fixed, so their figures say how it does on data it was never
tuned on.
"""

import dataclasses
import json
import logging
import math
import shutil
import time
from pathlib import Path

from hat_ebm_tf import recipe
from hat_ebm_tf.config import parse_config
from hat_ebm_tf.errors import TrainingDiverged
from hat_ebm_tf.outputs import check_writable_dir, write_atomically
from hat_ebm_tf.run_dir import RunDir
from hat_ebm_tf.training.callbacks import load_history
from hat_ebm_tf.training.grid_sets import GRID, GRID_BY_NAME
from hat_ebm_tf.training.train import run_training

log = logging.getLogger("hat_ebm_tf.training")


# A stage's figures worse than at a third of its steps by more than this share count as "getting worse".
TREND_TOLERANCE = 0.1


def _row(report):
    samples = report["samples"]
    return {
        "fd": samples["frechet_distance"],
        "kid": samples["kid"],
        "copying": samples["copying_share"],
        "confidence": samples.get("mean_confidence"),
        "floor_fd": report["floor"]["frechet_distance"],
        "baseline_fd": report["baseline"]["frechet_distance"],
        "generator_fd": report.get("generator", {}).get("frechet_distance"),
    }


def fd_trend(history, steps):
    """``(fd_at_a_third, fd_at_the_end, worse)`` of the evaluations' FD (all of one sample size).

    ``fd_at_a_third`` is the first evaluation past a third of ``steps``;
    ``worse``: the last one is above it by more than ``TREND_TOLERANCE``.
    """
    pairs = [(s, fd) for s, fd in zip(history.get("step", []), history.get("quality_fd", []), strict=False)]
    pairs = [(s, fd) for s, fd in pairs if s <= steps and fd is not None and not math.isnan(fd)]
    later = [fd for s, fd in pairs if s >= steps / 3]
    if len(later) < 2:
        return None, None, False
    return later[0], later[-1], later[-1] > later[0] * (1 + TREND_TOLERANCE)


def _stage(config, run, stage, start_step):
    """Train ``config`` into ``run`` from ``start_step`` (the previous stage's end); the stage's record.

    A rerun of the grid resumes a run past ``start_step``: its time is then not
    the stage's, and the record says where it resumed (``resumed_at``).
    """
    start = time.time()
    done_before = (load_history(run / RunDir.HISTORY).get("step") or [0])[-1]
    record = {
        "stage": stage,
        "steps": config.training.steps,
        "resumed_at": done_before if done_before > start_step else None,
    }
    try:
        summary = run_training(config, run, verbose=2)
    except TrainingDiverged as err:
        return {**record, "diverged": str(err), "seconds": time.time() - start}
    history = load_history(run / RunDir.HISTORY)
    gaps = [abs(g) for g in history.get("energy_diff", []) if not math.isnan(g)]
    third, end, worse = fd_trend(history, config.training.steps)
    record.update(
        diverged=None,
        seconds=time.time() - start,
        train_seconds=summary["train_seconds"],
        rollbacks=summary["rollbacks"],
        max_abs_energy_diff=max(gaps) if gaps else None,
        fd_at_a_third=third,
        fd_at_the_end=end,
        worse_over_the_last_two_thirds=worse,
        **(_row(summary["quality"]) if "quality" in summary else {}),
    )
    # Keep this stage's report and samples beside the run's, which a later stage replaces.
    for name in (RunDir.QUALITY, RunDir.SAMPLE_GRID, RunDir.TRAINING_CURVE):
        if (run / name).is_file():
            shutil.copy(run / name, run / f"{Path(name).stem}_{stage}{Path(name).suffix}")
    return record


def run_grid(out_dir, sets=None, steps_factor=1, seed=0, steps=None):
    """Train the recipe on each grid set into ``out_dir/NAME``; write ``grid.json`` and ``grid.md``.

    Args:
        out_dir: the grid's directory (a run directory per set; rerunning resumes them).
        sets: names of ``GRID`` sets, or None for all.
        steps_factor: after the budget, train each run on to this multiple of it (1: the budget only).
        seed: the runs' seed.
        steps: the step budget instead of the recipe's (a quick smoke run of the whole machinery).

    Returns:
        dict: the grid's records, by set name.
    """
    out_dir = Path(out_dir)
    check_writable_dir(out_dir, "--out")
    chosen = [GRID_BY_NAME[name] for name in sets] if sets else list(GRID)
    # A rerun keeps the records of the stages that its runs have finished: training them again would do nothing,
    # and their reports would be the later stage's.
    earlier = json.loads((out_dir / "grid.json").read_text()) if (out_dir / "grid.json").is_file() else {}
    records = {}
    for grid_set in chosen:
        facts = recipe.inspect_source(grid_set.source)
        values = recipe.derive(facts, grid_set.image_size, grid_set.channels, steps=steps, seed=seed)
        config = parse_config(values, where=f"the recipe for {grid_set.name}")
        run = out_dir / grid_set.name
        kept = {(s["stage"], s["steps"]): s for s in earlier.get(grid_set.name, {}).get("stages", [])}
        plan = [("1x", config, 0)]
        if steps_factor > 1:
            longer = dataclasses.replace(config.training, steps=config.training.steps * steps_factor)
            plan.append((f"{steps_factor}x", dataclasses.replace(config, training=longer), config.training.steps))
        stages = []
        for stage, stage_config, start_step in plan:
            done = (load_history(run / RunDir.HISTORY).get("step") or [0])[-1]
            record = kept.get((stage, stage_config.training.steps))
            if record is None or done < stage_config.training.steps:
                record = _stage(stage_config, run, stage, start_step)
            stages.append(record)
            if record["diverged"]:
                break
        records[grid_set.name] = {**dataclasses.asdict(grid_set), "num_images": facts.num_images, "stages": stages}
        write_atomically(out_dir / "grid.json", json.dumps({**earlier, **records}, indent=1))
        write_atomically(out_dir / "grid.md", format_grid({**earlier, **records}))
        log.info("grid: %s done", grid_set.name)
    return records


def _figure(value, digits=2):
    return "—" if value is None else f"{value:.{digits}f}"


def format_grid(records):
    """The grid as a Markdown table: a line per set and stage."""
    lines = [
        "| data set | tuned | size | steps | train min | FD | KID | copying | floor FD | baseline FD | "
        "FD ≤ ⅓ baseline | stable |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for record in records.values():
        for stage in record["stages"]:
            size = f"{record['image_size']}×{record['image_size']}×{record['channels']}"
            head = f"| {record['what']} | {'yes' if record['tuned'] else 'held out'} | {size} | {stage['steps']} |"
            # Minutes of training to the stage's steps, from the start: unknown once a stage resumed.
            stages = record["stages"][: record["stages"].index(stage) + 1]
            resumed = any(s.get("resumed_at") for s in stages)
            minutes = "resumed" if resumed else f"{sum(s.get('train_seconds', 0) for s in stages) / 60:.1f}"
            if stage["diverged"]:
                lines.append(f"{head} {stage['seconds'] / 60:.1f} | | | | | | | diverged: {stage['diverged']} |")
                continue
            if "fd" not in stage:
                lines.append(f"{head} {minutes} | (no report) | | | | | | |")
                continue
            beats = stage["fd"] <= stage["baseline_fd"] / 3
            stable = "yes" if stage["rollbacks"] == 0 else f"{stage['rollbacks']} rollbacks"
            if stage["worse_over_the_last_two_thirds"]:
                stable += f"; FD {stage['fd_at_a_third']:.2f} at a third, rising"
            lines.append(
                f"{head} {minutes} | {_figure(stage['fd'])} | {_figure(stage['kid'], 3)} | "
                f"{stage['copying']:.1%} | {_figure(stage['floor_fd'])} | {_figure(stage['baseline_fd'])} | "
                f"{'yes' if beats else 'no'} | {stable} |"
            )
    return "\n".join(lines) + "\n"
