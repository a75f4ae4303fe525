"""``hat-ebm sample``: draw samples from a trained model."""

from training.commands.common import add_sampler_flags, load_model_and_sampler, positive_int


def register(subparsers):
    parser = subparsers.add_parser("sample", help="draw samples from a trained model")
    parser.add_argument("model", help="run directory or .keras file")
    parser.add_argument("--num", type=positive_int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=positive_int, default=250)
    parser.add_argument("--out", default="samples.npz", help="output .npz (array 'images', uint8 [N, H, W, C])")
    parser.add_argument("--png", help="also write a grid of the first 100 samples")
    add_sampler_flags(parser, "the run's evaluation sampler; a .keras file's own")
    parser.set_defaults(func=run)


def run(args):
    import numpy as np

    from hat_ebm_tf.data import model_range_to_uint8
    from training.plots import save_image_grid

    model, config = load_model_and_sampler(args.model, args)
    images = model_range_to_uint8(model.sample(args.num, seed=args.seed, batch_size=args.batch_size, config=config))
    np.savez_compressed(args.out, images=images)
    if args.png:
        save_image_grid(images[:100], args.png)
    print(f"wrote {len(images)} samples {list(images.shape[1:])} to {args.out}")
