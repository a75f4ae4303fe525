"""``hat-ebm longrun``: long-run chains of a trained model, with energy, image strips and MALA acceptance."""

from pathlib import Path

from training.commands.common import add_sampler_flags, load_model_and_sampler, positive_int

DEFAULT_STEPS = 10000


def register(subparsers):
    parser = subparsers.add_parser(
        "longrun",
        help="run chains far past the training length: energy vs step (with real data's band), image strips, "
        "MALA acceptance, JSON",
    )
    parser.add_argument("model", help="run directory (or .keras file, then give --out)")
    parser.add_argument("--every", type=positive_int, default=100, help="record (and run a graph piece) every N steps")
    parser.add_argument("--chains", type=positive_int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="output directory (default: RUN/longrun)")
    parser.add_argument("--data-num", type=int, default=1000, help="real images for the energy band (0: none)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    add_sampler_flags(parser, f"the run's evaluation sampler, with --steps {DEFAULT_STEPS}")
    parser.set_defaults(func=run)


def _real_images(run_dir, num):
    """Up to ``num`` training images of the run's ``config.yaml`` data, or None (no config, or ``num`` 0)."""
    from training.commands.common import CONFIG_FILE

    config_file = Path(run_dir) / CONFIG_FILE
    if num <= 0 or not config_file.is_file():
        return None
    import numpy as np

    from hat_ebm_tf.data import image_dataset
    from training.config import load_config

    source = load_config(config_file).data.to_source()
    batches = image_dataset(source, min(num, 250), training=False).take(-(-num // 250))
    return np.concatenate([b.numpy() for b in batches])[:num]


def run(args):
    import sys
    import time

    import keras
    import numpy as np

    from hat_ebm_tf.evaluation.longrun import FILES, data_energies, long_run, mark_multiples, write_long_run
    from training.outputs import check_writable_dir, output_file

    # --steps is the sampler's num_steps; absent, a long run's default rather than the run's evaluation length.
    vars(args).setdefault("num_steps", DEFAULT_STEPS)
    if args.out is None and not Path(args.model).is_dir():
        raise SystemExit("hat-ebm longrun: error: give --out for a .keras file (no run directory to write into)")
    out = Path(args.out or Path(args.model) / "longrun")
    check_writable_dir(out, "--out")
    out.mkdir(parents=True, exist_ok=True)
    paths = {key: output_file(out / name, "--out", overwrite=args.overwrite) for key, name in FILES.items()}
    model, config = load_model_and_sampler(args.model, args)
    bar = keras.utils.Progbar(config.num_steps, unit_name="step") if sys.stderr.isatty() else None
    start = time.perf_counter()
    result = long_run(
        model,
        config,
        steps=config.num_steps,
        every=args.every,
        chains=args.chains,
        seed=args.seed,
        marks=mark_multiples(model.sampler_config.num_steps),
        progress=bar.update if bar else None,
    )
    images = _real_images(args.model, args.data_num) if Path(args.model).is_dir() else None
    if images is not None:
        result.data_energies = data_energies(model, images)
    info = {"model": str(args.model), "chains": args.chains, "seed": args.seed, "total_steps": config.num_steps}
    info["wall_time_s"] = round(time.perf_counter() - start, 1)
    write_long_run(result, paths, info)
    median = float(np.median(result.energies[-1]))
    line = f"{config.num_steps} steps × {args.chains} chains: final energy median {median:.4g}"
    if config.metropolis:
        line += f", acceptance (residual) {float(result.acceptance_res.mean()):.3f}"
        if config.update_latents:
            line += f", latent {float(result.acceptance_latent.mean()):.3f}"
    written = [p for k, p in paths.items() if k != "acceptance" or config.metropolis]
    print(f"{line}\nwrote {', '.join(str(p) for p in written)}")
