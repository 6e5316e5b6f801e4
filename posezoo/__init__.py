"""posezoo: a model zoo and toolkit for skeleton-based human motion models.

Public API: ``create``, ``list_models``, ``model_info``, ``save``, ``push_to_hub``. Names are
imported lazily so that ``import posezoo`` (and ``posezoo list``) does not import torch.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_LAZY = {
    "create": "posezoo.factory",
    "save": "posezoo.factory",
    "list_models": "posezoo.entries",
    "model_info": "posezoo.entries",
    "push_to_hub": "posezoo.hub",
    "lift": "posezoo.lifting",
}

__all__ = ["create", "lift", "list_models", "model_info", "push_to_hub", "save"]

if TYPE_CHECKING:
    from posezoo.entries import list_models, model_info
    from posezoo.factory import create, save
    from posezoo.hub import push_to_hub
    from posezoo.lifting import lift


_SUBMODULES = ("registry",)  # for plugins: @posezoo.registry.BACKBONES.register_module()


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"posezoo.{name}")
    raise AttributeError(f"module 'posezoo' has no attribute {name!r}")
