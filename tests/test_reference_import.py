"""``hat-ebm import-reference`` (``hat_ebm_tf.training.reference_import``): a run directory from the reference.

The first import runs the installed ``hat-ebm`` script; the others call its
``main()`` in this process (the same parser, command and exit codes).
"""

import numpy as np

from hat_ebm_tf.cli.main import main
from tests.helpers import FIXTURES, cli_fails, hat_ebm, max_rel_error


def _imports(spec, *flags):
    """The ``import-reference`` arguments of a synthesis hat network and generator fixture ``spec``."""
    return ("import-reference", "--hat", FIXTURES / spec["ebm"], "--generator", FIXTURES / spec["gen"], *flags)


def test_import_reference_cli_to_samples(tmp_path, fixtures, expected, monkeypatch):
    import keras

    spec = fixtures["nets"]["32_ngf64"]
    args = _imports(spec, "--mode", "synthesis", "--image-size", 32, "--run-dir", "run", "--steps", 2)
    result = hat_ebm(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    model = keras.saving.load_model(tmp_path / "run" / "model.keras")
    rel = max_rel_error(model.energy(expected["ebm32_ngf64_x"]), expected["ebm32_ngf64_energy"][:, 0])
    assert rel < 1e-5 and model.sampler_config.num_steps == 2
    monkeypatch.chdir(tmp_path)
    main(["sample", "run", "--num", "3", "--out", "s.npz"])
    assert np.load(tmp_path / "s.npz")["images"].shape == (3, 32, 32, 3)

    retro = fixtures["nets"]["retrofit32"]
    args = ["--hat", FIXTURES / spec["ebm"], "--decoder", FIXTURES / retro["decoder"]]
    args += ["--encoder", FIXTURES / retro["encoder"], "--mode", "retrofit", "--image-size", 32, "--run-dir", "retro"]
    main(["import-reference", *map(str, args)])
    assert (tmp_path / "retro" / "autoencoder.keras").is_file()


def test_import_reference_cli_names_mismatches(tmp_path, fixtures, capsys):
    spec = fixtures["nets"]["32_ngf64"]
    cli_fails(
        capsys,
        *_imports(spec, "--mode", "synthesis", "--image-size", 64, "--run-dir", tmp_path / "run"),
        code=2,  # a flag's value (ConfigError), as every other mismatch of a flag
        match="--image-size 64: the hat network checkpoint is for 32×32",
    )
    cli_fails(
        capsys,
        *_imports(spec, "--mode", "retrofit", "--image-size", 32, "--run-dir", tmp_path / "run"),
        code=2,
        match="--mode retrofit needs --decoder",
    )
    swapped = {"ebm": spec["gen"], "gen": spec["gen"]}
    cli_fails(
        capsys,
        *_imports(swapped, "--mode", "synthesis", "--image-size", 32, "--run-dir", tmp_path / "run"),
        code=3,
        match="no variable 'lin_5/kernel', so it is not a hat network",
    )


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
