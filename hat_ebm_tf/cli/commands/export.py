"""``hat-ebm export``: write a trained model as a versioned SavedModel for TF Serving."""

from hat_ebm_tf.argtypes import positive_int
from hat_ebm_tf.cli.common import add_sampler_flags, load_model_and_sampler


def register(subparsers):
    parser = subparsers.add_parser(
        "export",
        help="export a trained model as a SavedModel for TF Serving",
        description=(
            "Write BASE_PATH/NAME/VERSION/ (a SavedModel with the energy, ood_score, sample, generate, "
            "sampler_config (and refine) signatures and TF Serving warm-up requests), and add NAME to "
            "BASE_PATH/models.config. An existing version is never overwritten. sample and refine run the run's "
            "evaluation sampler, with the sampler flags below applied; sampler_config and "
            "assets.extra/sampler_config.json give its settings back."
        ),
    )
    parser.add_argument("model", metavar="RUN_OR_CHECKPOINT", help="run directory or .keras file")
    parser.add_argument("--base-path", required=True, help="TF Serving model root (holds models.config)")
    parser.add_argument("--name", required=True, help="model name in TF Serving")
    parser.add_argument("--version", type=positive_int, help="version number (default: highest existing + 1)")
    parser.add_argument(
        "--serving-root",
        help="where TF Serving sees --base-path, for models.config (e.g. /models in the tensorflow/serving "
        "Docker image; default: --base-path made absolute)",
    )
    add_sampler_flags(parser, "the run's evaluation sampler; a .keras file's own")
    parser.set_defaults(func=run)


def run(args):
    from hat_ebm_tf.serving.savedmodel import SAMPLER_CONFIG_FILE, check_model_name, export_model, serving_functions

    check_model_name(args.name)
    model, sampler = load_model_and_sampler(args.model, args)
    path = export_model(
        model, args.base_path, args.name, version=args.version, serving_root=args.serving_root, sampler=sampler
    )
    print(f"wrote version {path.name} of {args.name!r} to {path}")
    print(f"signatures: {', '.join([*serving_functions(model, sampler), 'serving_default (= ood_score)'])}")
    settings = " ".join(f"{key}={value}" for key, value in sampler.to_dict().items())
    print(f"sampler baked into sample and refine (see {SAMPLER_CONFIG_FILE}): {settings}")
