"""The run directory: the one owner of its file names, of reading its model and sampler back, and of
checking that a directory can take a run (``check_run_dir``).

A run directory is written by ``hat-ebm train`` (``hat_ebm_tf.training.train``)
or ``hat-ebm import-reference``, and read by ``sample``, ``fid`` and
``export``. Its file names are public (docs/formats.md documents them): they are
named here once, and every reader and writer takes them from ``RunDir``.

TensorFlow, Keras and the model are imported inside ``RunDir.load_model``
only, so that the command line names these files and checks a directory
without them.
"""

import os
import zipfile
from pathlib import Path

from hat_ebm_tf.config import evaluation_sampler, load_config
from hat_ebm_tf.errors import ConfigError, ModelFileError, RunDirError
from hat_ebm_tf.outputs import check_writable_dir


class RunDir:
    """A run directory's paths, by their public names.

    Args:
        path: the run directory (it need not exist yet).

    Attributes:
        path: the run directory, as a ``Path``.
    """

    CONFIG = "config.yaml"  # the validated config that was run
    MODEL = "model.keras"  # the trained model (EMA weights)
    CHECKPOINTS = "checkpoints"  # tf.train.CheckpointManager checkpoints, for exact resume
    HISTORY = "history.json"  # per-epoch tracker values and steps
    TRAINING_CURVE = "training_curve.png"
    SAMPLES = "samples.npz"  # ``images``: uint8 [N, H, W, C] drawn with the evaluation sampler
    SAMPLE_GRID = "samples.png"
    QUALITY = "quality.json"  # the quality report of the samples (hat_ebm_tf.quality.report)
    TENSORBOARD = "tensorboard"
    WORKERS = "workers"  # workers/<id>/: non-chief workers' outputs (multi-worker runs)
    LOCK = ".lock"  # held by the process training in the directory
    IMPORT_RECORD = "imported.json"  # `import-reference`: where the model came from
    AUTOENCODER = "autoencoder.keras"  # `import-reference --encoder`
    FID_RECORD = "fid.json"  # `hat-ebm fid`'s default record, next to the model

    def __init__(self, path):
        self.path = Path(path)

    def worker(self, task_id):
        """The directory of non-chief worker ``task_id`` (its checkpoints and model)."""
        return RunDir(self.path / self.WORKERS / str(task_id))

    @classmethod
    def model_file(cls, path):
        """The ``.keras`` file of ``path``: a run directory's ``model.keras``, or ``path`` itself."""
        path = Path(path)
        return path / cls.MODEL if path.is_dir() else path

    @classmethod
    def load_model(cls, path):
        """The ``HatEBM`` of a run directory or a ``.keras`` file.

        Raises:
            ModelFileError: no such file, a file Keras cannot read
                (``safe_mode`` stays on), or a model of another class.
        """
        # TensorFlow and the model: loaded only when a model is read (see the module doc).
        import keras

        from hat_ebm_tf import register_keras_classes
        from hat_ebm_tf.model import HatEBM

        register_keras_classes()
        model_file = cls.model_file(path)
        if not model_file.is_file():
            raise ModelFileError(
                f"no trained model at {os.fspath(model_file)!r} "
                f"(expected a run directory holding {cls.MODEL}, or a .keras file)"
            )
        try:
            model = keras.saving.load_model(model_file)
        except (ValueError, OSError, KeyError, TypeError, zipfile.BadZipFile) as err:
            raise ModelFileError(f"cannot load {os.fspath(model_file)!r}: {err}") from err
        if not isinstance(model, HatEBM):
            raise ModelFileError(
                f"{os.fspath(model_file)!r} holds a {type(model).__name__}, not a HatEBM (a model written by "
                "`hat-ebm train` or `hat-ebm import-reference`)"
            )
        return model

    @classmethod
    def evaluation_sampler(cls, path, model):
        """The sampler the run showed its results with (its ``samples.npz``), as a ``LangevinConfig``.

        Args:
            path: a run directory, or a ``.keras`` file.
            model: the ``HatEBM`` loaded from ``path``.

        Returns:
            For a run directory with a ``config.yaml``, ``model.sampler_config``
            with the config's ``evaluation.sampler`` applied; otherwise (a
            ``.keras`` file, an imported run) the model's own sampler.
        """
        config_file = Path(path) / cls.CONFIG
        if not config_file.is_file():
            return model.sampler_config
        return evaluation_sampler(config_file, model.sampler_config)

    @classmethod
    def data_source(cls, path):
        """The ``DataSource`` a run trained on, as its ``config.yaml`` names it; None for a ``.keras`` file or a run
        without a config (an imported one)."""
        config_file = Path(path) / cls.CONFIG
        return load_config(config_file).data.to_source() if config_file.is_file() else None


# Settings that may differ when a run resumes: they change neither the model nor the data it sees.
_RESUMABLE = {"training": ("steps", "steps_per_epoch"), "limits": None}
# What a run directory holds besides its config: present without config.yaml, it is another command's output.
_RUN_OUTPUTS = (RunDir.MODEL, RunDir.CHECKPOINTS, RunDir.HISTORY, RunDir.SAMPLES)


def _differences(previous, current, prefix=""):
    """Dotted keys whose values differ between two config dicts, skipping ``_RESUMABLE``."""
    keys = []
    for key in sorted(set(previous) | set(current)):
        name = f"{prefix}{key}"
        skip = _RESUMABLE.get(key, ()) if not prefix else ()
        if skip is None:
            continue
        old, new = previous.get(key), current.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            keys += [k for k in _differences(old, new, f"{name}.") if k.rpartition(".")[2] not in skip]
        elif old != new:
            keys.append(name)
    return keys


def has_checkpoint(run_dir):
    """Whether the run directory holds a training checkpoint (``checkpoints/ckpt-N.index``)."""
    return any((Path(run_dir) / RunDir.CHECKPOINTS).glob("ckpt-*.index"))


def check_run_dir(run_dir, config):
    """Refuse a run directory that cannot take this run, writing nothing.

    A run directory resumes when its ``config.yaml`` equals ``config`` up to
    ``training.steps``, ``training.steps_per_epoch`` and ``limits``; it is
    refused when it is a file, is not writable, holds another config, an
    unreadable ``config.yaml``, or another command's outputs (e.g. an
    ``import-reference`` model) without a ``config.yaml``. A run that stopped
    before its first checkpoint (e.g. on a bad setting) trained nothing a
    resume would keep: another config may take its directory, so that the
    same command with a corrected config runs there.

    Args:
        run_dir: ``Path`` of the run directory (it need not exist yet).
        config: the ``ExperimentConfig`` to run there.

    Raises:
        RunDirError: naming the directory and the problem.
    """
    check_writable_dir(run_dir, "run directory")
    saved = run_dir / RunDir.CONFIG
    if saved.exists():
        try:
            previous = load_config(saved)
        except ConfigError as err:
            raise RunDirError(
                f"{saved} does not hold a run's config ({err}); use a new --run-dir, or delete it if no run "
                "was started there"
            ) from err
        differences = _differences(previous.to_dict(), config.to_dict())
        if differences and has_checkpoint(run_dir):
            raise RunDirError(
                f"{run_dir} holds a run with a different config (it differs in {', '.join(differences)}); use a new "
                "--run-dir, or the same config (training.steps and training.steps_per_epoch may change on resume)"
            )
        return
    found = [name for name in _RUN_OUTPUTS if (run_dir / name).exists()]
    if found:
        raise RunDirError(
            f"{run_dir} holds {', '.join(found)} but no {RunDir.CONFIG}: the output of another command or run; use a "
            "new --run-dir"
        )
