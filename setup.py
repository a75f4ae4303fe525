"""Install the ``hat_ebm_tf`` package (its only top-level import name), its shipped configs and ``hat-ebm``."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent
# The runtime requirements only; test tools and the TF Serving protos are the extras below.
REQUIREMENTS = [
    line.strip()
    for line in (HERE / "requirements.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]
EXTRAS = {
    # Test tools: `pip install '.[test,serving]'` then `pytest` (the README's test command, and CI's).
    # setuptools and wheel: tests/test_layout.py builds the wheel as `pip install .` does.
    # pytest-xdist: the suite runs on two worker processes (pyproject.toml's addopts).
    "test": ["pytest>=7.4", "pytest-xdist>=3.5", "setuptools>=61", "wheel"],
    # TF Serving protos for the export's warm-up requests and models.config; they need TensorFlow 2.21.
    "serving": ["tensorflow-serving-api>=2.21,<2.22"],
}
# The shipped configs, beside the module that reads them (hat_ebm_tf.config).
CONFIGS = "hat_ebm_tf.configs"

setup(
    name="hat-ebm-tf",
    version="0.1.0",
    description="Hat EBM (Hill et al., NeurIPS 2022) in TensorFlow/Keras 3, with SavedModel export",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=[*find_packages(include=["hat_ebm_tf", "hat_ebm_tf.*"]), CONFIGS],
    # The experiment configs stay in the repository's training/configs/ and install as package data.
    package_dir={CONFIGS: "training/configs"},
    package_data={CONFIGS: ["*.yaml"]},
    install_requires=REQUIREMENTS,
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["hat-ebm=hat_ebm_tf.cli:main"]},
)
