"""Installs mbrec_tf, its TFDS builders and its pipelines."""

import setuptools

setuptools.setup(
    name="mbrec_tf",
    version="0.1.0",
    description="Multi-behavior recommendation (EHCF, MBNCF and baselines) for TensorFlow",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=setuptools.find_packages(include=["mbrec_tf*", "pipelines*", "tfds_builders*"]),
    package_data={"tfds_builders": ["*/dummy_data/**/*", "*/*.txt", "*/*.md"]},
    include_package_data=True,
    install_requires=[
        "tensorflow>=2.21,<2.22",
        "tf-keras>=2.21,<2.22",
        "tensorflow-recommenders==0.7.7",
        "tensorflow-datasets>=4.9,<4.10",
        "tensorboard>=2.20",
        "importlib_resources>=6.0",
        "numpy>=1.26",
        "pandas>=2.0",
        "scipy>=1.11",
        "absl-py>=2.0",
        # TF Serving's PredictionService protos and stubs for the local server's gRPC API.
        "tensorflow-serving-api>=2.21,<2.22",
        "grpcio>=1.24.3,<2.0",
        # pipelines.tune: TPE search with a resumable SQLite study.
        "optuna>=4.0",
        # pipelines.reproduce: the papers' figures as PNG.
        "matplotlib>=3.8",
    ],
    extras_require={
        "dev": ["pytest>=8.0", "ruff>=0.5", "dill>=0.3"],  # dill: tfds.testing
        # pipelines.benchmark --als_iterations: implicit's ALS, side by side with EHCF.
        "benchmark": ["implicit>=0.7", "threadpoolctl>=3.0"],
    },
)
