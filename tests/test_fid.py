"""`hat-ebm fid` end to end: a tiny model, the digits, and a tiny stand-in feature network."""

import hashlib
import json
import re

import keras
import numpy as np
import pytest

from hat_ebm_tf.cli.main import main
from hat_ebm_tf.features import INCEPTION_ENV, INCEPTION_URL, load_feature_extractor
from hat_ebm_tf.metrics import StreamingMoments, frechet_distance, kernel_inception_distance
from tests.helpers import cli_fails, hat_ebm, tiny_model

KID_FLAGS = ("--kid-subsets", "4", "--kid-subset-size", "20")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """An untrained tiny model and a stand-in feature network (3 channels in, 16 features out), saved."""
    root = tmp_path_factory.mktemp("fid")
    tiny_model().save(root / "tiny.keras")
    standin = keras.Sequential(
        [
            keras.Input((None, None, 3)),
            keras.layers.Rescaling(1 / 127.5, offset=-1.0),
            keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(16),
        ],
        name="standin",
    )
    standin.save(root / "standin.keras")
    return root


def test_fid_samples_scores_and_records(workdir, monkeypatch):
    args = ("fid", "--model", "tiny.keras", "--num", "30", "--batch-size", "16", "--features", "standin.keras")
    sampler = ("--steps", "2", "--init-scale-residual", "0.01", "--max-residual-norm", "none")
    outputs = ("--ref-stats", "ref.npz", "--dump-samples", "s.npz")
    result = hat_ebm(*args, *sampler, *KID_FLAGS, "--data", "digits:held_out", *outputs, cwd=workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "FID " in result.stdout and "KID " in result.stdout
    assert "\x1b[" not in result.stdout and "30/30" not in result.stdout  # no progress bar: not a terminal

    record = json.loads((workdir / "s.fid.json").read_text())  # default record path: next to the dump
    assert record["num_samples"] == 30 and record["seed"] == 0
    assert record["sampler"]["num_steps"] == 2 and record["sampler"]["init_scale_residual"] == 0.01
    assert record["sampler"]["max_residual_norm"] is None and record["sampler"]["step_size"] == 0.05  # model's own
    assert record["model"]["sha256"] == hashlib.sha256((workdir / "tiny.keras").read_bytes()).hexdigest()
    assert record["features"]["sha256"] == hashlib.sha256((workdir / "standin.keras").read_bytes()).hexdigest()
    assert record["reference"]["count"] == 797 and not record["reference"]["loaded"]  # the held-out split
    assert set(record["wall_time_s"]) >= {"sampling", "sample_features", "reference", "fid_kid", "total"}

    # The numbers, recomputed in this process from the dumped samples and the cached statistics.
    images = np.load(workdir / "s.npz")["images"]
    assert not list(workdir.glob("*.npy"))  # the scratch memory map is gone
    assert images.dtype == np.uint8 and images.shape == (30, 16, 16, 1)
    features = load_feature_extractor(str(workdir / "standin.keras"))(images)
    moments = StreamingMoments()
    moments.update(features)
    reference = np.load(workdir / "ref.npz")
    assert reference["mu"].shape == (16,) and reference["sigma"].shape == (16, 16)
    fid = frechet_distance(moments.mean, moments.covariance, reference["mu"], reference["sigma"])
    assert record["fid"] == pytest.approx(fid, rel=1e-5)
    # Fewer samples than the KID pool: the pool is every sample, in order.
    kid = kernel_inception_distance(features, reference["kid_features"], 4, 20, seed=0)
    assert [record["kid"]["mean"], record["kid"]["std"]] == pytest.approx(kid, rel=1e-4, abs=1e-9)

    # Again from the cached statistics, with no --data: the same samples and the same FID (`main` in this process).
    monkeypatch.chdir(workdir)
    main([*args, *sampler, *KID_FLAGS, "--ref-stats", "ref.npz", "--record", "again.json"])
    again = json.loads((workdir / "again.json").read_text())
    assert again["reference"]["loaded"] and again["fid"] == pytest.approx(record["fid"], rel=1e-6)


def test_missing_inception_and_bad_input_stop_with_named_errors(workdir, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(INCEPTION_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    found = rf"classify_image_graph_def\.pb was not found .*{re.escape(INCEPTION_URL)}"
    cli_fails(capsys, "fid", "--model", workdir / "tiny.keras", "--data", "digits", code=3, match=found)
    with pytest.raises(SystemExit, match="hat-ebm fid: error: give --data, or --ref-stats"):
        main(["fid", "--model", str(workdir / "tiny.keras"), "--ref-stats", str(tmp_path / "absent.npz")])
    (tmp_path / "exported").mkdir()
    (tmp_path / "exported" / "saved_model.pb").write_bytes(b"")
    with pytest.raises(SystemExit, match="is a SavedModel: its `sample` signature has one sampler's settings baked in"):
        main(["fid", "--model", str(tmp_path / "exported"), "--data", "digits"])
    with pytest.raises(SystemExit, match=r"--record r/x\.json: no directory 'r'"):
        main(["fid", "--model", "tiny.keras", "--data", "digits", "--record", "r/x.json"])
