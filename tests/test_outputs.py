"""Output paths (``hat_ebm_tf.outputs``): checked before any work, written exactly where printed."""

import numpy as np

from hat_ebm_tf.cli.main import main
from tests.helpers import cli_fails


def test_sample_writes_exactly_the_path_it_prints(models, tmp_path, capsys):
    sample = ("sample", models / "tiny.keras", "--num", 2, "--steps", 1)
    main([str(a) for a in (*sample, "--out", tmp_path / "foo")])
    assert f"to {tmp_path / 'foo.npz'}" in capsys.readouterr().out
    assert np.load(tmp_path / "foo.npz")["images"].shape == (2, 16, 16, 1) and not (tmp_path / "foo").exists()
    (tmp_path / "dir").mkdir()
    main([str(a) for a in (*sample, "--out", tmp_path / "dir")])
    assert f"to {tmp_path / 'dir' / 'samples.npz'}" in capsys.readouterr().out
    cli_fails(capsys, *sample, "--out", tmp_path / "foo.npz", code=4, match="the file exists; pass --overwrite")
    main([str(a) for a in (*sample, "--out", tmp_path / "foo.npz", "--overwrite")])
    cli_fails(capsys, *sample, "--out", tmp_path / "foo.npz" / "x.npz", code=4, match="no directory")
    cli_fails(
        capsys, "sample", models / "tiny.keras", "--num", 2_000_000_000, code=2,
        match=r"estimated memory 2\.56e\+03 GB .* exceeds the limit of 4 GB; .* raise --max-memory-gb",
    )  # fmt: skip


def test_outputs_are_checked_before_any_work(models, tmp_path, capsys):
    (tmp_path / "file").write_text("")
    unwritable = tmp_path / "file" / "out.json"
    ood = ("ood", "--model", tmp_path / "no-model", "--in", "a.npz", "--out", "b.npz")
    cli_fails(capsys, *ood, "--json", unwritable, code=4, match="--json .*: no directory")
    fid = ("fid", "--model", models / "tiny.keras", "--data", "digits", "--num", 4)
    cli_fails(capsys, *fid, "--record", unwritable, code=4, match="--record .*: no directory")
    (models / "fid.json").write_text("{}")  # an earlier result, next to the model
    try:
        cli_fails(capsys, *fid, code=4, match=r"fid.json: the file exists; pass --overwrite")
    finally:
        (models / "fid.json").unlink()
