"""``hat-ebm import-reference`` (``hat_ebm_tf.training.reference_import``): a run directory from the reference."""

import numpy as np

from tests.helpers import FIXTURES, cli_fails, max_rel_error


def test_import_reference_cli_to_samples(tmp_path, fixtures, expected):
    import keras

    from tests.helpers import hat_ebm

    spec = fixtures["nets"]["32_ngf64"]
    args = ["--hat", FIXTURES / spec["ebm"], "--generator", FIXTURES / spec["gen"], "--mode", "synthesis"]
    result = hat_ebm("import-reference", *args, "--image-size", 32, "--run-dir", "run", "--steps", 2, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    model = keras.saving.load_model(tmp_path / "run" / "model.keras")
    rel = max_rel_error(model.energy(expected["ebm32_ngf64_x"]), expected["ebm32_ngf64_energy"][:, 0])
    assert rel < 1e-5 and model.sampler_config.num_steps == 2
    result = hat_ebm("sample", "run", "--num", 3, "--out", "s.npz", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert np.load(tmp_path / "s.npz")["images"].shape == (3, 32, 32, 3)

    retro = fixtures["nets"]["retrofit32"]
    args = [
        "--hat",
        FIXTURES / spec["ebm"],
        "--decoder",
        FIXTURES / retro["decoder"],
        "--encoder",
        FIXTURES / retro["encoder"],
    ]
    result = hat_ebm(
        "import-reference", *args, "--mode", "retrofit", "--image-size", 32, "--run-dir", "retro", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "retro" / "autoencoder.keras").is_file()


def test_import_reference_cli_names_mismatches(tmp_path, fixtures):
    from tests.helpers import hat_ebm

    spec = fixtures["nets"]["32_ngf64"]
    args = ["--hat", FIXTURES / spec["ebm"], "--generator", FIXTURES / spec["gen"], "--mode", "synthesis"]
    result = hat_ebm("import-reference", *args, "--image-size", 64, "--run-dir", "run", cwd=tmp_path)
    assert result.returncode != 0 and "--image-size 64: the hat network checkpoint is for 32×32" in result.stderr
    result = hat_ebm(
        "import-reference",
        "--hat",
        FIXTURES / spec["gen"],
        "--generator",
        FIXTURES / spec["gen"],
        "--mode",
        "synthesis",
        "--image-size",
        32,
        "--run-dir",
        "run",
        cwd=tmp_path,
    )
    assert result.returncode != 0 and "no variable 'lin_5/kernel', so it is not a hat network" in result.stderr


def test_import_reference_never_writes_into_another_run(tmp_path, capsys):
    imports = ("import-reference", "--hat", tmp_path / "no.ckpt", "--generator", tmp_path / "no.ckpt")
    imports = (*imports, "--mode", "synthesis", "--image-size", 32, "--run-dir", tmp_path / "run")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.yaml").write_text("name: trained\n")
    cli_fails(capsys, *imports, code=4, match="holds a trained run")
    (tmp_path / "run" / "config.yaml").unlink()
    (tmp_path / "run" / "model.keras").write_bytes(b"an earlier import")
    cli_fails(capsys, *imports, code=4, match=r"holds an earlier import .*pass --overwrite")
    # With --overwrite the directory is accepted, and the (absent) checkpoint is what stops the import.
    cli_fails(capsys, *imports, "--overwrite", code=3, match="no.ckpt")
    assert (tmp_path / "run" / "model.keras").read_bytes() == b"an earlier import"
