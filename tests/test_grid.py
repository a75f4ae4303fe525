"""The grid of ``hat-ebm grid`` (``hat_ebm_tf.training.grid``): each set's recipe, its stages and its table."""

import json

from hat_ebm_tf.training.grid import fd_trend, format_grid, run_grid
from hat_ebm_tf.training.grid_sets import GRID


def test_the_grid_covers_the_sets_the_issue_names_and_marks_the_held_out_ones():
    sources = {(s.source, s.image_size, s.channels) for s in GRID}
    assert {("digits", 16, 1), ("digits", 32, 1), ("digits", 64, 1), ("digits:train[:200]", 16, 1)} <= sources
    assert {("digits:all", 16, 1), ("glyphs", 16, 1), ("glyphs", 32, 1), ("photo-patches", 32, 3)} <= sources
    assert any(s.tuned for s in GRID) and any(not s.tuned for s in GRID)


def test_the_trend_compares_the_last_evaluation_with_the_one_at_a_third():
    steps = [100, 200, 300, 400, 500, 600]
    # A bump on the way does not count; an end above the FD at a third by more than 10 % does.
    assert fd_trend({"step": steps, "quality_fd": [5, 3, 4, 2, 2.5, 2.2]}, 600) == (3, 2.2, False)
    assert fd_trend({"step": steps, "quality_fd": [5, 3, 2, 2, 2, 3.5]}, 600) == (3, 3.5, True)
    # Evaluations past the stage's steps, and NaN ones, are left out.
    assert fd_trend({"step": steps, "quality_fd": [5, 3, float("nan"), 2, 2, 9]}, 500) == (3, 2, False)


def test_a_grid_run_trains_its_budget_then_goes_on_and_keeps_both_reports(tmp_path, digits_reference):
    records = run_grid(tmp_path, sets=["digits-16"], steps_factor=2, steps=2)
    stages = records["digits-16"]["stages"]
    assert [stage["steps"] for stage in stages] == [2, 4] and all(stage["diverged"] is None for stage in stages)
    assert stages[0]["baseline_fd"] > 0 and stages[1]["rollbacks"] == 0
    run = tmp_path / "digits-16"
    assert (run / "quality_1x.json").is_file() and (run / "samples_2x.png").is_file()
    assert json.loads((run / "quality_1x.json").read_text())["samples"]["frechet_distance"] == stages[0]["fd"]
    assert json.loads((tmp_path / "grid.json").read_text()) == records
    table = (tmp_path / "grid.md").read_text().splitlines()
    assert table == format_grid(records).splitlines() and len(table) == 4
    assert table[2].startswith("| digits (1000), 16×16 | held out | 16×16×1 | 2 | 0.")

    # A rerun trains nothing and keeps each finished stage's record, and its report beside it.
    again = run_grid(tmp_path, sets=["digits-16"], steps_factor=2, steps=2)
    assert again == records
    assert json.loads((run / "quality_1x.json").read_text())["samples"]["frechet_distance"] == stages[0]["fd"]
    # Stages resumed by a rerun say so: their minutes are not the stage's.
    resumed = {**records["digits-16"], "stages": [{**stages[0], "resumed_at": 1}, stages[1]]}
    rows = format_grid({"digits-16": resumed}).splitlines()[2:]
    assert all(" | 2 | resumed | " in row or " | 4 | resumed | " in row for row in rows)
