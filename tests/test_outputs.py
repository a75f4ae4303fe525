"""Outputs (``hat_ebm_tf.outputs``): checked before any work, written exactly where printed, whole, and cleaned up."""

import numpy as np
import pytest

from hat_ebm_tf.cli.main import main
from hat_ebm_tf.outputs import remove_stale_temporaries, replacing, write_atomically
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


def test_a_file_is_replaced_whole_or_not_at_all(tmp_path):
    path = tmp_path / "history.json"
    write_atomically(path, "old")
    with pytest.raises(RuntimeError, match="killed mid-write"), replacing(path) as temporary:
        temporary.write_text("half")
        raise RuntimeError("killed mid-write")
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["history.json"]
    write_atomically(path, b"new")
    assert path.read_bytes() == b"new" and sorted(p.name for p in tmp_path.iterdir()) == ["history.json"]
    # A temporary of the caller's naming (TensorBoard reads every file whose name holds "tfevents").
    events = tmp_path / "events.out.tfevents.1"
    with replacing(events, tmp_path / ".rewrite.tmp") as temporary:
        assert temporary.name == ".rewrite.tmp"
        temporary.write_bytes(b"events")
    assert events.read_bytes() == b"events" and not temporary.exists()


def test_stale_temporaries_are_removed_unless_a_live_writer_holds_them(tmp_path):
    (tmp_path / "ckpt-6_temp").mkdir()
    (tmp_path / "ckpt-6_temp" / "part").write_bytes(b"partial")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x_temp").write_text("")
    (tmp_path / "ckpt-4.index").write_text("")
    assert remove_stale_temporaries(tmp_path, "*_temp") == [tmp_path / "ckpt-6_temp"]
    assert remove_stale_temporaries(tmp_path, "**/*_temp", in_use=lambda path: False) == [tmp_path / "sub" / "x_temp"]
    (tmp_path / "live_temp").mkdir()
    assert remove_stale_temporaries(tmp_path, "*_temp", in_use=lambda path: True) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt-4.index", "live_temp", "sub"]
    assert remove_stale_temporaries(tmp_path / "absent", "*") == []
