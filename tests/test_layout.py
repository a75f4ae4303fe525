"""The installed layout: one top-level import package, shipped configs by name, light imports, no cycles.

The wheel is built from a copy of this checkout with setuptools' PEP 517
backend (as ``pip install .`` builds it, without the network) and unpacked
into a folder that a fresh interpreter imports from, as a non-editable install
does.
"""

import ast
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from hat_ebm_tf.config import load_config

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted(p.stem for p in (ROOT / "training" / "configs").glob("*.yaml"))


def _python(code, *args, cwd, **env):
    """Run ``code`` in a fresh interpreter; its standard output (it must succeed)."""
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        cwd=cwd,
        env={**environ, "TF_CPP_MIN_LOG_LEVEL": "3", **env},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The wheel of this checkout, as ``pip install .`` builds it (from a clean copy: no stale build/ folder)."""
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    for name in ("setup.py", "README.md", "requirements.txt", "MANIFEST.in"):
        shutil.copy(ROOT / name, source / name)
    for name in ("hat_ebm_tf", "training"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    code = "import sys\nfrom setuptools import build_meta\nprint(build_meta.build_wheel(sys.argv[1]))"
    name = _python(code, out, cwd=source).strip().splitlines()[-1]
    return out / name


def _dist_info(archive, name):
    (path,) = [n for n in archive.namelist() if n.endswith(f".dist-info/{name}")]
    return archive.read(path).decode()


def test_the_wheel_holds_one_top_level_package_the_configs_and_the_command(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        tops = {n.split("/")[0] for n in names}
        assert {t for t in tops if not t.endswith(".dist-info")} == {"hat_ebm_tf"}
        assert _dist_info(archive, "top_level.txt").split() == ["hat_ebm_tf"]
        assert "hat-ebm = hat_ebm_tf.cli:main" in _dist_info(archive, "entry_points.txt")
        requires = [line for line in _dist_info(archive, "METADATA").splitlines() if line.startswith("Requires-Dist")]
    assert {f"hat_ebm_tf/configs/{name}.yaml" for name in SHIPPED} <= set(names)
    assert not [n for n in names if n.startswith("hat_ebm_tf/") and "tests" in n.split("/")]
    # Test tools and the TF Serving protos (which pin TensorFlow 2.21) are extras, not runtime requirements.
    extras = {
        line.split(";")[0].split()[1].split("<")[0].split(">")[0]: line for line in requires if "extra ==" in line
    }
    assert set(extras) >= {"pytest", "tensorflow-serving-api"}
    assert 'extra == "test"' in extras["pytest"] and 'extra == "serving"' in extras["tensorflow-serving-api"]
    runtime = [line for line in requires if "extra ==" not in line]
    assert not [line for line in runtime if "pytest" in line or "serving" in line], runtime


def test_shipped_configs_load_by_name_from_a_non_editable_install(wheel, tmp_path):
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    code = (
        "import sys\n"
        "import hat_ebm_tf\n"
        "from hat_ebm_tf.config import CONFIG_DIR, load_config\n"
        "print(hat_ebm_tf.__file__)\n"
        "print(CONFIG_DIR)\n"
        "print(' '.join(load_config(name).name for name in sys.argv[1:]))\n"
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))\n"
    )
    # From an empty folder, so that neither the checkout nor its training/ folder is on the path.
    work = tmp_path / "work"
    work.mkdir()
    lines = _python(code, *SHIPPED, cwd=work, PYTHONPATH=str(site)).splitlines()
    package, config_dir, loaded, heavy = lines[-4:]
    assert Path(package).is_relative_to(site) and Path(config_dir) == site / "hat_ebm_tf" / "configs"
    assert loaded.split() == [load_config(name).name for name in SHIPPED]
    # Configs validate before TensorFlow loads (hat_ebm_tf.choices, hat_ebm_tf.sources): `hat-ebm train` names a
    # bad config at once.
    assert heavy == "[]"


def test_importing_serving_adds_no_keras_and_no_model_code(tmp_path):
    # TensorFlow 2.21 imports parts of Keras by itself: what counts is what serving adds on top.
    code = (
        "import sys\n"
        "import tensorflow\n"
        "before = set(sys.modules)\n"
        "import hat_ebm_tf.serving\n"
        "print(' '.join(sorted(set(sys.modules) - before)))\n"
    )
    added = _python(code, cwd=tmp_path, PYTHONPATH=str(ROOT)).split()
    assert sorted(added) == ["hat_ebm_tf", "hat_ebm_tf.serving", "hat_ebm_tf.serving.scoring"]


def test_the_command_line_parses_without_tensorflow(tmp_path):
    code = (
        "import sys\n"
        "from hat_ebm_tf.cli.main import build_parser\n"
        "build_parser()\n"
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))\n"
    )
    assert _python(code, cwd=tmp_path, PYTHONPATH=str(ROOT)).strip() == "[]"


def _imports(path):
    """The absolute module names a source file imports (at any depth)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", ["benchmarks", "evaluation", "serving", "training"])
def test_library_subpackages_never_import_the_command_line(package):
    for path in sorted((ROOT / "hat_ebm_tf" / package).glob("*.py")):
        cli = sorted(name for name in _imports(path) if name.startswith("hat_ebm_tf.cli"))
        assert not cli, f"{path.relative_to(ROOT)} imports {cli}"


def test_the_repository_keeps_configs_in_training_and_one_client_in_export():
    training = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "training").rglob("*") if p.is_file())
    assert training == ["training/README.md", *(f"training/configs/{name}.yaml" for name in SHIPPED)]
    assert sorted(p.name for p in (ROOT / "export").iterdir()) == ["README.md", "hat_ebm_scoring.py"]
    # The stand-alone client needs TensorFlow and NumPy only (tests/test_export.py runs it without hat_ebm_tf).
    imported = {name.split(".")[0] for name in _imports(ROOT / "export" / "hat_ebm_scoring.py")}
    assert imported - sys.stdlib_module_names <= {"numpy", "tensorflow"}, imported
