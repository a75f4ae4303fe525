"""``hat-ebm export``: write a trained model as a versioned SavedModel for TF Serving."""

from hat_ebm_tf.argtypes import positive_int64, probability, serving_name
from hat_ebm_tf.choices import MAX_SAMPLE_BATCH
from hat_ebm_tf.cli.common import add_sampler_flags, load_model_and_sampler
from hat_ebm_tf.errors import ConfigError, DataError
from hat_ebm_tf.sources import parse_source

DEFAULT_FPR = 0.05


def register(subparsers):
    parser = subparsers.add_parser(
        "export",
        help="export a trained model as a SavedModel for TF Serving",
        description=(
            "Write BASE_PATH/NAME/VERSION/ (a SavedModel with the energy, ood_score, sample, generate, "
            "sampler_config (and refine) signatures and TF Serving warm-up requests), and add NAME to "
            "BASE_PATH/models.config. An existing version is never overwritten. sample and refine run the run's "
            "evaluation sampler, with the sampler flags below applied, and draw at most "
            f"{MAX_SAMPLE_BATCH} images a request (a larger batch fails with INVALID_ARGUMENT naming the cap; "
            "BASE_PATH/batching_parameters.txt sets TF Serving's max_batch_size to it); sampler_config and "
            "assets.extra/sampler_config.json give its settings back. With --calibrate, the export also holds the "
            "energies of held-out in-distribution images and a threshold, behind the ood_detect signatures "
            "(score, conformal p_value, is_ood) and assets.extra/ood_calibration.json."
        ),
    )
    parser.add_argument("model", metavar="RUN_OR_CHECKPOINT", help="run directory or .keras file")
    parser.add_argument("--base-path", required=True, help="TF Serving model root (holds models.config)")
    parser.add_argument(
        "--name",
        required=True,
        type=serving_name,
        help="model name in TF Serving: ASCII letters, digits, '_', '.' or '-', not starting with '.' or '-'",
    )
    parser.add_argument(
        "--version", type=positive_int64, help="version number, at most 2^63-1 (default: highest existing + 1)"
    )
    parser.add_argument(
        "--serving-root",
        help="where TF Serving sees --base-path, for models.config (e.g. /models in the tensorflow/serving "
        "Docker image; default: --base-path made absolute)",
    )
    parser.add_argument(
        "--calibrate",
        metavar="DATA",
        help="held-out in-distribution images to calibrate the OOD detector on: a data source as in configs "
        "(digits[:SPLIT], tfds:NAME[:SPLIT], a folder, a .npz/.npy file); plain 'digits' means "
        "digits:calibration, held-out digits that training never saw",
    )
    parser.add_argument(
        "--fpr",
        type=probability,
        help=f"with --calibrate: target false-positive rate of ood_detect's is_ood on in-distribution inputs "
        f"(default: {DEFAULT_FPR})",
    )
    add_sampler_flags(parser, "the run's evaluation sampler; a .keras file's own")
    parser.set_defaults(func=run)


def run(args):
    if args.fpr is not None and not args.calibrate:
        raise ConfigError(
            f"--fpr {args.fpr:g} sets the calibrated detector's false-positive rate: give --calibrate DATA"
        )

    # TensorFlow: loaded only when the command runs.
    from hat_ebm_tf.serving.calibration import CalibrationModule
    from hat_ebm_tf.serving.savedmodel import SAMPLER_CONFIG_FILE, export_model, target_version
    from hat_ebm_tf.serving.signatures import serving_functions

    # The serving extra, the version and models.config, before the model loads and calibrates.
    version = target_version(args.base_path, args.name, args.version)
    model, sampler = load_model_and_sampler(args.model, args)
    fpr = DEFAULT_FPR if args.fpr is None else args.fpr
    calibration = _calibration(model, args.calibrate, fpr) if args.calibrate else None
    path = export_model(
        model,
        args.base_path,
        args.name,
        version=version,
        serving_root=args.serving_root,
        sampler=sampler,
        calibration=calibration,
    )
    print(f"wrote version {path.name} of {args.name!r} to {path}")
    detector = CalibrationModule(calibration) if calibration else None
    print(f"signatures: {', '.join([*serving_functions(model, sampler, detector), 'serving_default (= ood_score)'])}")
    if calibration:
        print(
            f"OOD calibration on {calibration.data} (n = {calibration.size}, sha256 {calibration.sha256[:12]}…): "
            f"is_ood when score > {calibration.threshold:.6g}, target FPR {calibration.fpr:g}"
        )
    settings = " ".join(f"{key}={value}" for key, value in sampler.to_dict().items())
    print(f"sampler baked into sample and refine (see {SAMPLER_CONFIG_FILE}): {settings}")


def _calibration(model, spec, fpr):
    """The ``OODCalibration`` of ``model`` on the data source ``spec`` (plain ``digits``: ``digits:calibration``)."""
    # TensorFlow: loaded only when the command runs.
    from hat_ebm_tf.serving.calibration import calibrate_model

    spec = "digits:calibration" if spec == "digits" else spec
    height, _, channels = model.image_shape
    source = parse_source(spec, height, channels)
    try:
        return calibrate_model(model, source, fpr, data=spec)
    except ValueError as err:
        raise DataError(f"--calibrate {spec}: {err}") from err
