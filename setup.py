"""Packaging glue that pyproject.toml cannot express: ship the top-level ``registry/`` folder
(the named model entries, as data) inside the wheel as ``posezoo._entries``."""
from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["posezoo", "posezoo.*"]) + ["posezoo._entries"],
    package_dir={"posezoo._entries": "registry"},
    package_data={"posezoo._entries": ["*.toml", "recipes/*.py"]},
)
