"""``hat-ebm export``: write a trained model as a versioned SavedModel for TF Serving."""

from training.commands.common import load_trained_model, positive_int


def register(subparsers):
    parser = subparsers.add_parser(
        "export",
        help="export a trained model as a SavedModel for TF Serving",
        description=(
            "Write BASE_PATH/NAME/VERSION/ (a SavedModel with the energy, ood_score, sample, generate "
            "(and refine) signatures and TF Serving warm-up requests), and add NAME to BASE_PATH/models.config. "
            "An existing version is never overwritten."
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
    parser.set_defaults(func=run)


def run(args):
    from export.savedmodel import check_model_name, export_model, serving_functions

    check_model_name(args.name)
    model = load_trained_model(args.model)
    path = export_model(model, args.base_path, args.name, version=args.version, serving_root=args.serving_root)
    print(f"wrote version {path.name} of {args.name!r} to {path}")
    print(f"signatures: {', '.join([*serving_functions(model), 'serving_default (= ood_score)'])}")
