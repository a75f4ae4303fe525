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


# The layers of hat_ebm_tf, lowest first, by the first name below the package ("" is the package's own
# __init__, the lazy table of the core's public names). A module imports only from its own layer's modules
# (layers 0 to 2) or its own package (layers 3 and 4), from lower layers, and along SIDEWAYS.
LAYERS = (
    # 0: free of TensorFlow, so that configs validate and the command line parses without it.
    ("errors", "choices", "modes", "sampler_config", "sources", "offline_sets", "recipe", "argtypes", "config"),
    # 1: the core.
    (
        *("", "rng", "layers", "networks", "precision", "optimizers", "distribute", "losses", "validation"),
        *("langevin_steps", "sampler", "mala", "model", "autoencoder", "reference", "train_step"),
    ),
    # 2: data, metrics, sample quality, the run directory and its outputs.
    ("data", "metrics", "features", "run_dir", "outputs", "plots", "quality"),
    # 3: the jobs.
    ("training", "evaluation", "serving"),
    # 4: the command line and the benchmarks.
    ("cli", "benchmarks"),
)
# (importer's package, imported package) within layers 3 and 4: the OOD report scores exported SavedModels, and
# `hat-ebm bench` runs the benchmarks.
SIDEWAYS = {("evaluation", "serving"), ("cli", "benchmarks")}
LAYER_OF = {name: layer for layer, names in enumerate(LAYERS) for name in names}


def _package_modules():
    """``{dotted name: path}`` of every module of hat_ebm_tf (a package by its ``__init__.py``)."""
    modules = {}
    for path in sorted((ROOT / "hat_ebm_tf").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


MODULES = _package_modules()


def _known(name):
    """The module of hat_ebm_tf that ``name`` (a module, or a name in one) is, or None outside the package."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _import_edges(module):
    """``{(imported module, line)}``: the modules of hat_ebm_tf that ``module`` imports, at any depth.

    ``from package import name`` counts as an import of the module ``package.name`` when there is one. The
    package's ``__init__`` also counts the modules its lazy table names (strings).
    """
    tree = ast.parse(MODULES[module].read_text())
    edges = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{module}:{node.lineno}: a relative import"
            targets = [f"{node.module}.{alias.name}" for alias in node.names]
        elif module == "hat_ebm_tf" and isinstance(node, ast.Constant) and isinstance(node.value, str):
            targets = [node.value] if node.value in MODULES else []
        else:
            continue
        edges |= {(target, node.lineno) for target in map(_known, targets) if target is not None}
    return edges


def _place(module):
    """``(layer, package)`` of a module of hat_ebm_tf (``package``: its first name below hat_ebm_tf)."""
    package = module.split(".")[1] if "." in module else ""
    assert package in LAYER_OF, f"{module} has no layer: add it to LAYERS in tests/test_layout.py"
    return LAYER_OF[package], package


def _allowed(importer, imported):
    (layer, package), (their_layer, their_package) = _place(importer), _place(imported)
    if their_layer != layer:
        return their_layer < layer
    return layer <= 2 or package == their_package or (package, their_package) in SIDEWAYS


def test_every_module_imports_only_from_its_layer_and_below():
    upward = [
        f"{MODULES[module].relative_to(ROOT)}:{line} imports {target} (layer {_place(target)[0]} from layer "
        f"{_place(module)[0]})"
        for module in MODULES
        for target, line in sorted(_import_edges(module))
        if not _allowed(module, target)
    ]
    assert not upward, "\n".join(upward)


def test_no_import_cycle_between_modules():
    graph = {module: sorted({target for target, _ in _import_edges(module)} - {module}) for module in MODULES}
    done, path = set(), []

    def visit(module):
        if module in path:
            cycle = [*path[path.index(module) :], module]
            raise AssertionError("import cycle: " + " -> ".join(cycle))
        if module in done:
            return
        path.append(module)
        for target in graph[module]:
            visit(target)
        path.pop()
        done.add(module)

    for module in graph:
        visit(module)


def _function_imports(tree):
    """The import statements inside functions (at any depth)."""
    functions = [node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
    found = {
        id(node): node for f in functions for node in ast.walk(f) if isinstance(node, (ast.Import, ast.ImportFrom))
    }
    return sorted(found.values(), key=lambda node: node.lineno)


def test_every_import_inside_a_function_says_why():
    """A late import has a comment on its line, or above its block of imports (e.g. "TensorFlow: loaded only ...")."""
    silent = []
    for path in MODULES.values():
        lines = path.read_text().splitlines()
        tree = ast.parse("\n".join(lines))
        imports = _function_imports(tree)
        import_lines = {n for node in imports for n in range(node.lineno, node.end_lineno + 1)}
        for node in imports:
            if any("#" in lines[n - 1] for n in range(node.lineno, node.end_lineno + 1)):
                continue
            above = node.lineno - 1
            while above in import_lines or not lines[above - 1].strip():  # the block's other imports, blank lines
                above -= 1
            if not lines[above - 1].strip().startswith("#"):
                silent.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not silent, "imports inside functions without a comment saying why: " + ", ".join(silent)


def test_the_repository_keeps_configs_in_training_and_one_client_in_export():
    training = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "training").rglob("*") if p.is_file())
    assert training == ["training/README.md", *(f"training/configs/{name}.yaml" for name in SHIPPED)]
    assert sorted(p.name for p in (ROOT / "export").iterdir()) == ["README.md", "hat_ebm_scoring.py"]
    # The stand-alone client needs TensorFlow and NumPy only (tests/test_export.py runs it without hat_ebm_tf).
    imported = {name.split(".")[0] for name in _imports(ROOT / "export" / "hat_ebm_scoring.py")}
    assert imported - sys.stdlib_module_names <= {"numpy", "tensorflow"}, imported
