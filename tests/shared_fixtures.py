"""The fixtures that need TensorFlow: tiny networks, models and runs, shared so that the suite stays fast.

tests/conftest.py registers this plugin only in the processes that run tests
(pytest-xdist's workers, or the one process of ``-n 0``).
"""

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from pathlib import Path
from types import SimpleNamespace

import tensorflow as tf

# Two logical CPU devices, so that tf.distribute strategies run for real in
# the tests; this must happen before TensorFlow initialises its devices.
tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2
)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402

from tests.helpers import FIXTURES, hat_ebm, tiny_digits_config, tiny_model  # noqa: E402


@pytest.fixture
def digits16():
    from hat_ebm_tf.data import load_digits

    return load_digits(16)[:64]


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _run_directory(tmp_path_factory):
    """The directory that the whole test run shares: pytest-xdist runs every worker as a session of its own."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextlib.contextmanager
def _locked(path):
    """Hold an exclusive lock on the file ``path`` (created if needed): other workers wait on it, not on a timer."""
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _built_once(tmp_path_factory, name, build):
    """``run directory / name``, made by ``build(directory)`` once per test run; its users must only read it.

    The first worker to take the lock builds it; the others wait on the lock
    (not on a timer), then use it. A build that failed leaves no ``.built``
    mark, and the next worker builds it again, so each reports the failure.
    """
    shared = _run_directory(tmp_path_factory)
    directory = shared / name
    with _locked(shared / f"{name}.lock"):
        if not (directory / ".built").exists():
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir()
            build(directory)
            (directory / ".built").touch()
    return directory


@pytest.fixture(scope="session", autouse=True)
def quality_cache(tmp_path_factory):
    """The test run's cache of the quality report's networks (``HAT_EBM_CACHE``): tests and their commands never
    write ~/.cache.

    All workers share it, so each network is trained once per run
    (``quality_classifier`` and ``quality_encoder`` hold a lock while they train).
    """
    from hat_ebm_tf.quality.cache import CACHE_ENV

    cache = _run_directory(tmp_path_factory) / "hat_ebm_cache"
    cache.mkdir(exist_ok=True)
    previous = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(cache)
    yield os.environ[CACHE_ENV]
    if previous is None:
        del os.environ[CACHE_ENV]
    else:
        os.environ[CACHE_ENV] = previous


@pytest.fixture(scope="session", autouse=True)
def scratch_tempdir(tmp_path_factory):
    """The session's temporary directory (``tempfile`` and ``TMPDIR``), inside pytest's own, which pytest prunes.

    Each TensorFlow Datasets builder of a dataset that is not prepared (the
    tfds tests mock the data) leaves an empty ``tmp*tfds`` directory behind
    (``DatasetInfo.initialize_from_bucket``), and a `hat-ebm` killed by a test
    leaves its autograph files; here they do not pile up in /tmp.
    """
    scratch = tmp_path_factory.mktemp("tempfile")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tempfile, "tempdir", str(scratch))
        patch.setenv("TMPDIR", str(scratch))
        yield scratch


@pytest.fixture(scope="session")
def quality_classifier(quality_cache):
    """The digits classifier, trained once per run into its cache (commands run by tests read it).

    The first worker to get the cache's lock trains and writes the classifier;
    the others wait on the lock (not on a timer), then read it.
    """
    from hat_ebm_tf.quality.classifier import classifier_for

    with _locked(Path(quality_cache) / "classifier.lock"):
        return classifier_for("digits")


@pytest.fixture(scope="session")
def glyph_classifier(quality_cache):
    """The glyph classifier, trained once per run into its cache (as ``quality_classifier``)."""
    from hat_ebm_tf.quality.classifier import classifier_for

    with _locked(Path(quality_cache) / "glyph_classifier.lock"):
        return classifier_for("glyphs")


@pytest.fixture(scope="session")
def digits_reference(quality_cache, quality_classifier):
    """The ``QualityReference`` of the 16×16 digits, its encoder trained once per run into the cache (as above)."""
    from hat_ebm_tf.quality.reference import reference_for
    from hat_ebm_tf.sources import DataSource

    with _locked(Path(quality_cache) / "encoder.lock"):
        return reference_for(DataSource("digits", image_size=16, channels=1)).prepare()


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, digits_reference):
    """``(root, result)``: ``hat-ebm train`` of a tiny digits config into ``root/run``, in a subprocess, once per run.

    The run evaluates with another sampler than it trains with (3 steps with
    clip 0.5, against 2 steps with clip 1.0), as the shipped digits config does.
    ``result`` holds the command's ``returncode``, ``stdout`` and ``stderr``.
    """

    def build(root):
        config = tiny_digits_config(steps=4, steps_per_epoch=2, batch_size=8)
        config["evaluation"] = {
            "num_samples": 12,
            "batch_size": 5,
            "sampler": {"num_steps": 3, "max_residual_norm": 0.5},
        }
        (root / "tiny.yaml").write_text(yaml.safe_dump(config))
        result = hat_ebm("train", "--config", "tiny.yaml", "--run-dir", "run", cwd=root)
        assert result.returncode == 0, result.stderr[-3000:]
        output = {"returncode": result.returncode, "stdout": result.stdout, "stderr": result.stderr}
        (root / "result.json").write_text(json.dumps(output))

    root = _built_once(tmp_path_factory, "cli", build)
    return root, SimpleNamespace(**json.loads((root / "result.json").read_text()))


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    """``tiny.keras`` (an untrained HatEBM) and ``other.keras`` (a Keras model of another class)."""
    root = tmp_path_factory.mktemp("models")
    tiny_model().save(root / "tiny.keras")
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)]).save(root / "other.keras")
    return root


@pytest.fixture(scope="module")
def expected():
    """The reference implementation's outputs on the shipped fixtures (``expected.npz``), by name."""
    return dict(np.load(FIXTURES / "expected.npz"))


@pytest.fixture(scope="module")
def fixtures():
    """The index of the shipped reference fixtures (``fixtures.json``): checkpoints and settings."""
    return json.loads((FIXTURES / "fixtures.json").read_text())


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """A tiny joint-mode model, saved as .keras and exported with `hat-ebm export` in a subprocess, once per run.

    ``model`` is that .keras file loaded, the model the export serves.
    """

    def build(root):
        tiny_model("refine").save(root / "tiny.keras")
        result = hat_ebm(
            "export", "tiny.keras", "--base-path", "serving", "--name", "tiny", "--serving-root", "/models", cwd=root
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert f"wrote version 1 of 'tiny' to {Path('serving/tiny/1')}" in result.stdout

    root = _built_once(tmp_path_factory, "export", build)
    version = root / "serving" / "tiny" / "1"
    model = keras.saving.load_model(root / "tiny.keras")
    return SimpleNamespace(root=root, model=model, version=version, loaded=tf.saved_model.load(str(version)))
