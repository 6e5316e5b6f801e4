"""Packaging glue that pyproject.toml cannot express: ship the top-level ``registry/`` folder
(the named model entries, as data) and ``model_cards/`` (card templates) inside the wheel as
``posezoo._entries`` and ``posezoo._model_cards``."""
from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["posezoo", "posezoo.*"]) + ["posezoo._entries", "posezoo._model_cards"],
    package_dir={"posezoo._entries": "registry", "posezoo._model_cards": "model_cards"},
    package_data={"posezoo._entries": ["*.toml", "recipes/*.py"], "posezoo._model_cards": ["*.md"],
                  "posezoo": ["weights/*.safetensors"]},
)
