"""Helpers shared by the tests: tiny models and configs, the reference fixtures, `hat-ebm`, subprocesses, exports."""

import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from hat_ebm_tf.autoencoder import Autoencoder
from hat_ebm_tf.cli.main import main
from hat_ebm_tf.config import CONFIG_DIR
from hat_ebm_tf.data import distributed_dataset, image_dataset, load_digits, model_range_to_uint8
from hat_ebm_tf.model import HatEBM
from hat_ebm_tf.networks import Generator, HatNetwork, RetrofitDecoder, RetrofitEncoder
from hat_ebm_tf.optimizers import FusedAdam
from hat_ebm_tf.sampler_config import LangevinConfig
from hat_ebm_tf.sources import DataSource

REPO = Path(__file__).resolve().parents[1]
# The stand-alone scoring client that a deployment copies next to its serving stack.
STANDALONE_CLIENT = REPO / "export" / "hat_ebm_scoring.py"
# The out-of-distribution sets of `digits_suite`, in order.
SUITE_SETS = ["rotated", "inverted", "uniform noise", "constant", "photo patches", "letters"]
# The reference implementation's checkpoints and outputs: shipped with the tests (3.5 MB; see
# fixtures/reference/README.md), so that parity is checked on every clone.
FIXTURES = Path(os.environ.get("HAT_EBM_REFERENCE_FIXTURES", Path(__file__).resolve().parent / "fixtures/reference"))

TINY_SAMPLER = LangevinConfig(num_steps=3, step_size=0.05, temperature=1e-2, max_residual_norm=1.0)
JOINT_SAMPLER = LangevinConfig(
    num_steps=3, step_size=0.05, latent_step_size=0.05, temperature=1e-2, update_latents=True, tau=1.0
)


def tiny_model(mode="synthesis", sampler=None, bank_size=32, seed=0, **kwargs):
    """A compiled 16×16×1 HatEBM with width-8 networks and a 4-d latent (``FusedAdam``, as training builds)."""
    sampler = sampler or (TINY_SAMPLER if mode == "synthesis" else JOINT_SAMPLER)
    model = HatEBM(
        HatNetwork(16, 8, 1),
        Generator(16, 8, 1, latent_dim=4),
        mode=mode,
        sampler=sampler,
        bank_size=bank_size,
        seed=seed,
        **kwargs,
    )
    model.compile(
        hat_optimizer=FusedAdam(1e-3, use_ema=True, ema_momentum=0.9),
        generator_optimizer=FusedAdam(1e-3) if mode == "synthesis" else None,
    )
    return model


def tiny_autoencoder(latent_noise=0.02, seed=0, optimizer=None, prior_components=1):
    """A compiled 16×16×1 ``Autoencoder`` of width 8 with an 8×8×1 latent grid (default: ``FusedAdam`` 3e-3)."""
    model = Autoencoder(
        RetrofitEncoder(width=8, channels=1, image_size=16),
        RetrofitDecoder(width=8, channels=1, latent_shape=(8, 8, 1)),
        latent_noise=latent_noise,
        loss_factor=1000.0,
        seed=seed,
        prior_components=prior_components,
    )
    model.compile(optimizer=optimizer or FusedAdam(3e-3))
    return model


def tiny_images(n, seed=0):
    """``[n, 16, 16, 1]`` float32 in [-1, 1], on the uint8 grid so that the uint8 path sees the same images."""
    pixels = model_range_to_uint8(np.random.default_rng(seed).uniform(-1, 1, (n, 16, 16, 1)))
    return pixels.astype(np.float32) / np.float32(127.5) - np.float32(1.0)  # float32 arithmetic, as the graph


def fit_on_digits(strategy, model, steps):
    """``model.fit`` on 16×16 digits, 8 a step, for ``steps`` steps: the same global batches on any number of replicas.

    Returns:
        The ``History`` of the fit.
    """
    source = DataSource("digits", image_size=16)
    if strategy.num_replicas_in_sync > 1:
        data = distributed_dataset(strategy, source, global_batch_size=8, seed=3)
    else:
        data = image_dataset(source, 8, training=True, seed=3)
    return model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)


def tiny_digits_config(**training):
    """The shipped digits config as a dict, tiny: width 8, a 4-d latent, 2 Langevin steps, 4 evaluation samples.

    Args:
        **training: settings of its ``training`` section, over batch size 4 and bank size 16.
    """
    values = yaml.safe_load((CONFIG_DIR / "digits.yaml").read_text())
    values["networks"].update(hat_width=8, generator_width=8, latent_dim=4)
    values["sampler"]["num_steps"] = 2
    values["training"].update({"batch_size": 4, "bank_size": 16, **training})
    values["evaluation"] = {"num_samples": 4, "batch_size": 4}
    return values


def array_config(root, **training):
    """``tiny_digits_config`` reading 64 digits from ``root/digits.npz``: no digits quality figures, so quicker."""
    np.savez(root / "digits.npz", images=model_range_to_uint8(load_digits(16)[:64]))
    values = tiny_digits_config(**training)
    values["data"] = {"source": str(root / "digits.npz"), "image_size": 16, "channels": 1}
    return values


def history_steps(run):
    """The steps of a run directory's ``history.json``."""
    return json.loads((run / "history.json").read_text())["step"]


def latest_checkpoint(run):
    """The name of a run directory's latest checkpoint, e.g. ``ckpt-4``."""
    import tensorflow as tf

    return os.path.basename(tf.train.latest_checkpoint(run / "checkpoints"))


HAT_EBM = Path(sys.executable).parent / "hat-ebm"
# Runs `hat-ebm` with a signal sent at a chosen moment (tests/signal_hook.py says how).
SIGNAL_HOOK = Path(__file__).parent / "signal_hook.py"
IMAGES = ("DT_FLOAT", "(-1, 16, 16, 1)")
# The signatures of the tiny refine model's export: signature → (inputs, outputs), each name → (dtype, shape),
# as `saved_model_cli show` prints them.
EXPECTED_SIGNATURES = {
    "energy": ({"images": IMAGES}, {"energy": ("DT_FLOAT", "(-1)")}),
    "energy_uint8": ({"images": ("DT_UINT8", IMAGES[1])}, {"energy": ("DT_FLOAT", "(-1)")}),
    "ood_score": ({"images": IMAGES}, {"score": ("DT_FLOAT", "(-1)")}),
    "ood_score_uint8": ({"images": ("DT_UINT8", IMAGES[1])}, {"score": ("DT_FLOAT", "(-1)")}),
    "serving_default": ({"images": IMAGES}, {"score": ("DT_FLOAT", "(-1)")}),
    "sample": ({"seeds": ("DT_INT64", "(-1)")}, {"images": IMAGES}),
    "refine": ({"latents": ("DT_FLOAT", "(-1, 4)"), "seeds": ("DT_INT64", "(-1)")}, {"images": IMAGES}),
    "generate": ({"latents": ("DT_FLOAT", "(-1, 4)")}, {"images": IMAGES}),
    "sampler_config": ({"seeds": ("DT_INT64", "(-1)")}, {"json": ("DT_STRING", "(-1)")}),
}


def hat_ebm(*args, cwd, env=None):
    """The installed ``hat-ebm ARGS`` in a fresh process run from ``cwd``, in this process's environment or ``env``."""
    if not HAT_EBM.exists():
        pytest.fail(f"{HAT_EBM} is not installed: run `pip install .` (the README's test command does)")
    return subprocess.run(
        [str(HAT_EBM), *map(str, args)],
        cwd=cwd,
        env=dict(os.environ) if env is None else env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def train_in_subprocess(root, run_dir, *flags, hook=()):
    """``hat-ebm train`` of ``root/c.yaml`` in a fresh process; with ``hook``, through tests/signal_hook.py."""
    command = [sys.executable, str(SIGNAL_HOOK), *map(str, hook), "--"] if hook else [str(HAT_EBM)]
    args = ["train", "--config", "c.yaml", "--run-dir", run_dir, *map(str, flags)]
    return subprocess.run([*command, *args], cwd=root, env=_env(), capture_output=True, text=True, timeout=900)


def train_in_process(root, run_dir, *flags):
    """``hat-ebm train`` of ``root/c.yaml`` into ``root/run_dir`` through ``main()``, in this process.

    For runs that need no fresh process (a killed run needs its own). Under
    load, a run's round-off can differ from another run's (tests/test_train.py
    says by how much), wherever each runs.
    """
    main(["train", "--config", str(root / "c.yaml"), "--run-dir", str(root / run_dir), *map(str, flags)])


def main_in(cwd, *argv):
    """``hat-ebm ARGV`` through ``main()`` in this process, run from ``cwd``; its standard output.

    For commands that another test already runs as the installed script in a
    fresh process (where a module that only the tests import cannot hide a
    missing import). A failure raises the command's ``SystemExit``.
    """
    out = io.StringIO()
    with contextlib.chdir(cwd), contextlib.redirect_stdout(out):
        main([str(a) for a in argv])
    return out.getvalue()


def cli_fails(capsys, *argv, code, match):
    """``hat-ebm ARGV`` in this process must exit with ``code``, its last stderr line naming the problem."""
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in argv])
    assert info.value.code == code, str(info.value)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"hat-ebm {argv[0]}: ") and re.search(match, last), last


def max_rel_error(actual, desired):
    """The largest absolute difference over the largest magnitude of ``desired``."""
    actual, desired = np.asarray(actual, np.float64), np.asarray(desired, np.float64)
    return float(np.max(np.abs(actual - desired)) / max(np.max(np.abs(desired)), 1e-30))


def sklearn_ood_metrics(in_scores, out_scores):
    """AUROC, AUPR and FPR at 95 % TPR by scikit-learn, an independent count: higher scores are more OOD."""
    from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

    is_ood, scores = np.r_[np.zeros(len(in_scores)), np.ones(len(out_scores))], np.r_[in_scores, out_scores]
    # FPR@95%TPR takes the in-distribution inputs as the positives, accepted when the score is low.
    fpr, tpr, _ = roc_curve(1 - is_ood, -scores, drop_intermediate=False)
    return {
        "auroc": roc_auc_score(is_ood, scores),
        "aupr": average_precision_score(is_ood, scores),
        "fpr_at_95_tpr": fpr[np.argmax(tpr >= 0.95 - 1e-12)],
    }


def _env(**extra):
    # PYTHONPATH is passed on: a checkout that shares another checkout's editable install (a git worktree) names
    # its own code there, and the commands the tests start must run that code.
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **extra}


def start_process(*command, cwd, **env):
    """A subprocess running ``command`` in ``cwd`` (with ``env`` added), output captured."""
    return subprocess.Popen(
        [str(c) for c in command], cwd=cwd, env=_env(**env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


# A fresh interpreter's script, beside a copy of the stand-alone client, where hat_ebm_tf cannot be imported:
# TensorFlow, NumPy and the client only. The body goes between the head and the tail.
_FRESH_HEAD = """
import sys

sys.modules["hat_ebm_tf"] = None  # `import hat_ebm_tf` (and of its subpackages) now raises ImportError

import numpy as np
import tensorflow as tf

from hat_ebm_scoring import load_scorer
"""
_FRESH_TAIL = """
leaked = sorted(m for m in sys.modules if m.split(".")[0] == "hat_ebm_tf" and sys.modules[m] is not None)
assert not leaked, leaked
"""


def start_without_hat_ebm_tf(directory, body, *args):
    """A fresh Python running ``body`` with ``args`` in ``directory``, beside the client, without hat_ebm_tf.

    The script (``fresh.py``) has ``sys``, ``np``, ``tf`` and the client's ``load_scorer``, and fails if any module
    of hat_ebm_tf was loaded by its end.
    """
    (directory / "fresh.py").write_text(_FRESH_HEAD + body + _FRESH_TAIL)
    shutil.copy(STANDALONE_CLIENT, directory / "hat_ebm_scoring.py")  # the file itself, not a link
    return start_process(sys.executable, "fresh.py", *args, cwd=directory)


def finish_process(process):
    """The standard output of a subprocess that must succeed."""
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr[-3000:]
    return stdout


def call_signature(loaded, signature, **inputs):
    """The outputs of signature ``signature`` of a loaded SavedModel, as NumPy arrays by name."""
    return {k: v.numpy() for k, v in loaded.signatures[signature](**inputs).items()}


def exit_code_is_documented(code):
    """Whether docs/formats.md's exit-code table has a row for ``code``."""
    table = (Path(__file__).resolve().parents[1] / "docs" / "formats.md").read_text()
    section = table.split("\n## Exit codes\n")[1].split("\n## ")[0]
    return re.search(rf"^\| {code} \|", section, re.MULTILINE) is not None
