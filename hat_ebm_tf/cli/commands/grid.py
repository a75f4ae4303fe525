"""``hat-ebm grid``: train the recipe of ``hat-ebm train --data`` on the offline grid of data sets."""

from hat_ebm_tf.argtypes import positive_int
from hat_ebm_tf.training.grid_sets import GRID, GRID_BY_NAME


def register(subparsers):
    names = ", ".join(grid_set.name for grid_set in GRID)
    parser = subparsers.add_parser(
        "grid",
        help="train the derived recipe on the offline grid of data sets and tabulate the quality reports",
        description="Train the recipe of `hat-ebm train --data` on each data set of the grid (made offline from "
        f"what the installed packages ship: {names}), one run directory each in --out, and write grid.json and "
        "grid.md (the table of the README's 'Train on your own images'). A rerun resumes the runs. Hours on 2 CPU "
        "cores for the whole grid.",
    )
    parser.add_argument("--out", required=True, help="the grid's directory")
    parser.add_argument("--sets", help=f"comma-separated names of sets to run (default: all: {names})")
    parser.add_argument(
        "--steps-factor",
        type=int,
        default=1,
        help="train each run on to this multiple of its step budget after the budget (e.g. 3: the stability check)",
    )
    parser.add_argument(
        "--steps", type=positive_int, help="step budget instead of the recipe's (a quick smoke run of the machinery)"
    )
    parser.set_defaults(func=run)


def run(args):
    sets = [name.strip() for name in args.sets.split(",")] if args.sets else None
    unknown = sorted(set(sets or ()) - set(GRID_BY_NAME))
    if unknown:
        raise SystemExit(f"hat-ebm grid: error: unknown sets {unknown}; the grid's are {sorted(GRID_BY_NAME)}")
    if args.steps_factor < 1:
        raise SystemExit(f"hat-ebm grid: error: --steps-factor {args.steps_factor} must be >= 1")

    # TensorFlow: loaded only once the flags are valid.
    from hat_ebm_tf.training.grid import format_grid, run_grid

    print(format_grid(run_grid(args.out, sets, args.steps_factor, steps=args.steps)), end="")
