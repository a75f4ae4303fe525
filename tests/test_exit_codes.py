"""docs/formats.md's exit-code table, command by command: a representative bad input of each kind, in every command.

Each case runs ``hat-ebm ARGV`` through the entry point's ``main()`` in this
process (tests/test_cli.py runs the installed script itself) and checks the
exit code, and that the failure is one line, ``hat-ebm COMMAND: KIND:
MESSAGE``, that names the problem. Interruptions (130, 143) need a process
of their own to signal: tests/test_train.py and tests/test_savedmodel.py send
them. ``hat-ebm export`` without the serving extra (1) is in
tests/test_savedmodel.py.
"""

import re
import shutil
import subprocess
import sys
from types import SimpleNamespace

import keras
import numpy as np
import pytest
import yaml

from hat_ebm_tf.cli.main import EXIT_CODES, main
from hat_ebm_tf.model import HatEBM
from hat_ebm_tf.networks import Generator, HatNetwork
from hat_ebm_tf.serving.savedmodel import MAX_VERSION
from tests.helpers import FIXTURES, array_config, exit_code_is_documented

# The kinds of the one-line message, by exit code (hat_ebm_tf.cli.main.EXIT_CODES).
KINDS = {}
for _, _code, _kind in EXIT_CODES:
    KINDS.setdefault(_code, set()).add(_kind)


@pytest.fixture(scope="module")
def place(tmp_path_factory, tiny_run, models, exported):
    """The inputs of the cases: bad files and configs in a directory of their own, and the session's models."""
    root = tmp_path_factory.mktemp("exit_codes")
    (root / "file").write_text("a file, where a directory is due")
    (root / "exists.npz").write_bytes(b"an earlier result")
    (root / "bad_stats.npz").write_text("1 2 3")
    np.savez(root / "int32.npz", images=np.zeros((2, 16, 16, 1), np.int32))
    (root / "not_a_savedmodel").mkdir()
    (root / "not_a_savedmodel" / "config.yaml").write_text("name: a run, not an export\n")
    (root / "trained").mkdir()
    (root / "trained" / "config.yaml").write_text("name: trained\n")
    (root / "serving" / "tiny" / "1").mkdir(parents=True)  # an existing version

    configs = {
        "bank": {"training": {"bank_size": 8, "batch_size": 32}},
        "temperature": {"sampler": {"temperature": 1e-50}},
        "missing_data": {"data": {"source": str(root / "missing.npz"), "image_size": 16, "channels": 1}},
        "diverges": {"training": {"max_energy_gap": 1e-12}},
    }
    for name, edits in configs.items():
        values = array_config(root, steps=2, steps_per_epoch=2)
        for section, settings in edits.items():
            values[section].update(settings)
        (root / f"{name}.yaml").write_text(yaml.safe_dump(values))

    # A reference checkpoint whose .data file a full disk cut short; its .index is whole.
    for suffix in (".index", ".data-00000-of-00001"):
        shutil.copy(FIXTURES / f"ebm32_ngf64.ckpt{suffix}", root / f"ebm32.ckpt{suffix}")
    data = root / "ebm32.ckpt.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])

    # A model file without a run directory: nothing says what data it learned.
    HatEBM(HatNetwork(16, 8, 3), Generator(16, 8, 3, latent_dim=4), bank_size=4).save(root / "colour.keras")
    # A stand-in feature network for `fid`.
    standin = keras.Sequential([keras.Input((None, None, 3)), keras.layers.GlobalAveragePooling2D()], name="standin")
    standin.save(root / "standin.keras")
    return SimpleNamespace(root=root, run=tiny_run[0] / "run", models=models, export=exported.version.parent)


def _export(p, *flags):
    return ["export", p.models / "tiny.keras", "--base-path", p.root / "serving", *flags]


def _fid(p, *flags):
    return ["fid", "--model", p.models / "tiny.keras", "--record", p.root / "fid.json", "--num", 4, *flags]


def _import(p, hat, *flags):
    gen = FIXTURES / "gen32_ngf64.ckpt"
    return ["import-reference", "--hat", hat, "--generator", gen, "--mode", "synthesis", "--image-size", 32, *flags]


# case → (exit code, hat-ebm ARGV given the `place`, what the message must say).
CASES = {
    # train
    "train: bank_size below the batch": (
        2,
        lambda p: ["train", "--config", p.root / "bank.yaml", "--run-dir", p.root / "r_bank"],
        r"training.bank_size=8 is smaller than training.batch_size=32",
    ),
    "train: a temperature that vanishes in float32": (
        2,
        lambda p: ["train", "--config", p.root / "temperature.yaml", "--run-dir", p.root / "r_t"],
        r"sampler: LangevinConfig: temperature=1e-50 vanishes in float32",
    ),
    "train: a missing data file": (
        3,
        lambda p: ["train", "--config", p.root / "missing_data.yaml", "--run-dir", p.root / "r_data"],
        r"missing.npz' does not exist",
    ),
    "train: a run directory that is a file": (
        4,
        lambda p: ["train", "--config", p.root / "diverges.yaml", "--run-dir", p.root / "file"],
        r"is not a directory",
    ),
    "train: training diverges": (
        5,
        lambda p: ["train", "--config", p.root / "diverges.yaml", "--run-dir", p.root / "r_diverges"],
        r"training diverged at step \d+: \|energy_diff\| = .* exceeds max_energy_gap = 1e-12",
    ),
    # sample
    "sample: --max-memory-gb nan": (
        2,
        lambda p: ["sample", p.run, "--max-memory-gb", "nan"],
        r"argument --max-memory-gb: nan must be > 0 and finite",
    ),
    "sample: --max-memory-gb -1": (
        2,
        lambda p: ["sample", p.run, "--max-memory-gb", "-1"],
        r"argument --max-memory-gb: -1 must be > 0 and finite",
    ),
    "sample: --temperature 1e-50": (
        2,
        lambda p: ["sample", p.run, "--temperature", "1e-50"],
        r"argument --temperature: 1e-50 vanishes in float32",
    ),
    "sample: --quality of a .keras file": (
        2,
        lambda p: ["sample", p.root / "colour.keras", "--quality", "--num", 4, "--out", p.root / "never.npz"],
        r"--quality compares the samples with the data the run trained on, .* has none",
    ),
    "sample: a missing model": (
        3,
        lambda p: ["sample", p.root / "nowhere", "--out", p.root / "never.npz"],
        r"no trained model at",
    ),
    "sample: an existing --out": (
        4,
        lambda p: ["sample", p.models / "tiny.keras", "--out", p.root / "exists.npz"],
        r"the file exists; pass --overwrite",
    ),
    # import-reference
    "import-reference: --out-factor nan": (
        2,
        lambda p: _import(p, p.root / "ebm32.ckpt", "--run-dir", p.root / "r_i", "--out-factor", "nan"),
        r"argument --out-factor: nan must be > 0",
    ),
    "import-reference: a truncated .data file": (
        3,
        lambda p: _import(p, p.root / "ebm32.ckpt", "--run-dir", p.root / "r_i"),
        r"cannot read the values of reference checkpoint .*ebm32.ckpt",
    ),
    "import-reference: into a trained run": (
        4,
        lambda p: _import(p, p.root / "ebm32.ckpt", "--run-dir", p.root / "trained"),
        r"holds a trained run",
    ),
    # export
    **{
        f"export: --name {name!r}": (
            2,
            lambda p, name=name: _export(p, "--name", name),
            r"argument --name: a model name is ASCII letters, digits",
        )
        for name in ("", "../evil", "a/b", "dïgits", "my model")
    },
    "export: --version 2^63": (
        2,
        lambda p: _export(p, "--name", "m", "--version", MAX_VERSION + 1),
        r"argument --version: expected an integer in \[1, 9223372036854775807\]",
    ),
    "export: --fpr without --calibrate": (
        2,
        lambda p: _export(p, "--name", "m", "--fpr", "0.2"),
        r"--fpr 0.2 sets the calibrated detector's false-positive rate: give --calibrate DATA",
    ),
    "export: --temperature 1e-50": (
        2,
        lambda p: _export(p, "--name", "m", "--temperature", "1e-50"),
        r"argument --temperature: 1e-50 vanishes in float32",
    ),
    "export: a model of another class": (
        3,
        lambda p: ["export", p.models / "other.keras", "--base-path", p.root / "serving", "--name", "m"],
        r"holds a Sequential, not a HatEBM",
    ),
    "export: an existing --version": (
        4,
        lambda p: _export(p, "--name", "tiny", "--version", 1),
        r"version 1 of 'tiny' already exists .* never overwritten",
    ),
    # ood
    "ood: no OOD set": (
        2,
        lambda p: ["ood", "--model", p.export, "--in", "digits:test"],
        r"^hat-ebm ood: error: give --in DATA and at least one --out DATA",
    ),
    "ood: a run directory as --model": (
        3,
        lambda p: ["ood", "--model", p.root / "not_a_savedmodel", "--in", "digits:test", "--out", "digits:test"],
        r"no SavedModel at .*not_a_savedmodel",
    ),
    "ood: an array of int32": (
        3,
        lambda p: ["ood", "--model", p.export, "--in", p.root / "int32.npz", "--out", "digits:test"],
        r"int32.npz': expected uint8 images or float images in \[-1, 1\]",
    ),
    "ood: --json below a file": (
        4,
        lambda p: ["ood", "--model", p.export, "--suite", "digits", "--json", p.root / "file" / "r.json"],
        r"--json .*: no directory",
    ),
    # fid
    "fid: --num 1": (2, lambda p: [*_fid(p, "--data", "digits"), "--num", 1], r"--num 1: a covariance needs"),
    "fid: a corrupt --ref-stats": (
        3,
        lambda p: _fid(p, "--ref-stats", p.root / "bad_stats.npz", "--features", p.root / "standin.keras"),
        r"cannot read statistics file .*bad_stats.npz': not a .npz file",
    ),
    "fid: a missing --features .keras": (
        3,
        lambda p: _fid(p, "--data", "digits", "--features", p.root / "missing.keras"),
        r"feature extractor .*missing.keras': no such file",
    ),
    "fid: an existing --record": (
        4,
        lambda p: [*_fid(p, "--data", "digits"), "--record", p.root / "exists.npz"],
        r"the file exists; pass --overwrite",
    ),
    # longrun
    "longrun: --steps 0": (
        2,
        lambda p: ["longrun", p.run, "--steps", 0, "--out", p.root / "lr"],
        r"--steps 0: a long run needs at least 1 step",
    ),
    "longrun: --chains beyond the memory limit": (
        2,
        # A limit well below the estimate (4.3 GB for the tiny run's chains): were the guard broken, no test would
        # take the machine's memory.
        lambda p: ["longrun", p.run, "--chains", 100_000, "--max-memory-gb", 1, "--out", p.root / "lr"],
        r"--chains 100000, running at once: .* exceeds the limit of 1 GB; .* raise --max-memory-gb",
    ),
    "longrun: --metropolis --temperature 1e-300": (
        2,
        lambda p: ["longrun", p.run, "--metropolis", "--temperature", "1e-300", "--out", p.root / "lr"],
        r"argument --temperature: 1e-300 vanishes in float32",
    ),
    "longrun: a missing model": (
        3,
        lambda p: ["longrun", p.root / "nowhere.keras", "--out", p.root / "lr"],
        r"no trained model at",
    ),
    "longrun: --out is a file": (4, lambda p: ["longrun", p.run, "--out", p.root / "file"], r"is not a directory"),
    # bench
    "bench: an unknown section": (
        2,
        lambda p: ["bench", "--sections", "speed"],
        r"argument --sections: unknown sections \['speed'\]",
    ),
    "bench: --out below a file": (
        4,
        lambda p: ["bench", "--tiny", "--sections", "jit", "--out", p.root / "file" / "b.json"],
        r"--out .*file' is not a directory",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_each_kind_of_bad_input_gets_its_documented_exit_code_and_one_line(case, place, capsys):
    code, argv, match = CASES[case]
    argv = [str(a) for a in argv(place)]
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == code, capsys.readouterr().err
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    found = re.fullmatch(rf"hat-ebm {argv[0]}: ([a-z ]+): (.+)", last)
    assert found and found[1] in KINDS[code], last
    assert re.search(match, last), last
    assert not found[2].startswith(("hat-ebm ", f"{found[1]}: ")), last  # the prefix and the kind once
    assert exit_code_is_documented(code), f"exit code {code} is not in docs/formats.md's table"


def test_a_bad_export_name_is_refused_before_tensorflow_loads(tmp_path):
    # A fresh interpreter: in this one TensorFlow is loaded already.
    probe = (
        "import sys\n"
        "from hat_ebm_tf.cli.main import main\n"
        "try:\n"
        "    main(['export', 'run', '--base-path', 'b', '--name', '../evil'])\n"
        "except SystemExit as exit:\n"
        "    print(exit.code, 'tensorflow' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["2", "False"], result.stderr[-3000:]
    assert "argument --name: a model name is ASCII letters" in result.stderr
