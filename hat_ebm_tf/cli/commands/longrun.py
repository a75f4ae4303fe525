"""``hat-ebm longrun``: long-run chains of a trained model, with energy, image strips and MALA acceptance."""

import sys
import time
from pathlib import Path

import numpy as np

from hat_ebm_tf.argtypes import non_negative_int, positive_int
from hat_ebm_tf.cli.common import add_memory_flag, add_sampler_flags, check_memory_flag, load_model_and_sampler
from hat_ebm_tf.config import chain_bytes
from hat_ebm_tf.errors import ConfigError
from hat_ebm_tf.outputs import check_writable_dir, output_file

DEFAULT_STEPS = 10000


def register(subparsers):
    parser = subparsers.add_parser(
        "longrun",
        help="run chains far past the training length: energy vs step (with real data's band), image strips, "
        "MALA acceptance, JSON",
    )
    parser.add_argument("model", help="run directory (or .keras file, then give --out)")
    parser.add_argument("--every", type=positive_int, default=100, help="record (and run a graph piece) every N steps")
    parser.add_argument("--chains", type=positive_int, default=64, help="chains, all run at once (default 64)")
    add_memory_flag(parser, "the --chains, which run at once,")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="output directory (default: RUN/longrun)")
    parser.add_argument(
        "--data-num", type=non_negative_int, default=1000, help="real images for the energy band (0: none)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    add_sampler_flags(parser, f"the run's evaluation sampler, with --steps {DEFAULT_STEPS}")
    parser.set_defaults(func=run)


def run(args):
    # TensorFlow: loaded only when the command runs.
    import keras

    from hat_ebm_tf.evaluation.longrun import FILES, long_run, mark_multiples, run_data_images, write_long_run
    from hat_ebm_tf.model import data_energies

    # --steps is the sampler's num_steps; absent, a long run's default rather than the run's evaluation length.
    vars(args).setdefault("num_steps", DEFAULT_STEPS)
    if args.num_steps < 1:
        raise ConfigError(f"--steps {args.num_steps}: a long run needs at least 1 step")
    if args.out is None and not Path(args.model).is_dir():
        raise ConfigError("give --out for a .keras file (no run directory to write into)")
    out = Path(args.out or Path(args.model) / "longrun")
    check_writable_dir(out, "--out")
    model, config = load_model_and_sampler(args.model, args)
    size = args.chains * chain_bytes(model.image_shape, model.latent_shape, model.hat.width)
    check_memory_flag({f"--chains {args.chains}, running at once": size}, args)
    out.mkdir(parents=True, exist_ok=True)
    paths = {key: output_file(out / name, "--out", overwrite=args.overwrite) for key, name in FILES.items()}
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
    images = run_data_images(args.model, args.data_num)
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
