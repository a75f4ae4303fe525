"""Install hat_ebm_tf, its training, export and benchmarks packages, and the `hat-ebm` command."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent
PACKAGES = ("hat_ebm_tf", "training", "export", "benchmarks")
REQUIREMENTS = [
    line.strip()
    for line in (HERE / "requirements.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]

setup(
    name="hat-ebm-tf",
    version="0.1.0",
    description="Hat EBM (Hill et al., NeurIPS 2022) in TensorFlow/Keras 3, with SavedModel export",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(include=[pattern for name in PACKAGES for pattern in (name, f"{name}.*")]),
    package_data={"training": ["configs/*.yaml"]},
    install_requires=REQUIREMENTS,
    entry_points={"console_scripts": ["hat-ebm=training.cli:main"]},
)
