"""posezoo's registries, scoped ``posezoo`` on top of mmengine's.

Parts register themselves with a decorator beside their class::

    @BACKBONES.register_module()
    class DSTformer(nn.Module): ...

The built-in parts live in the modules of :mod:`posezoo.models` and are imported on the first
lookup. Third-party packages add parts through the entry-point group ``posezoo.plugins``: each
entry point names a module whose import registers its parts. Plugins are loaded lazily, on the
first lookup in any posezoo registry. Registering a name twice is an error naming both sources.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import warnings
from typing import Any

from mmengine import registry as mm
from mmengine.registry import Registry

PLUGIN_GROUP = "posezoo.plugins"

_plugins_loaded = False
_loading_plugin: str | None = None  # "plugin <dist> (<entry point>)" while a plugin is imported


def _source_of(obj: Any) -> str:
    module = getattr(obj, "__module__", "?")
    return f"{module}.{getattr(obj, '__qualname__', obj)}"


class PartRegistry(Registry):
    """An mmengine ``Registry`` that loads built-in parts and plugins before each lookup and
    refuses duplicate names with a message naming both the existing and the new source."""

    def _register_module(self, module, module_name=None, force=False):
        names = [module_name] if isinstance(module_name, str) else (module_name or [module.__name__])
        for name in names:
            existing = self._module_dict.get(name)
            if existing is not None and existing is not module and not force:
                new = _source_of(module) + (f" from {_loading_plugin}" if _loading_plugin else "")
                raise KeyError(
                    f"{self.name} {name!r} is registered twice: already by {_source_of(existing)}, "
                    f"again by {new}. Rename one of them."
                )
            if existing is module:
                return
        super()._register_module(module, module_name, force=True)

    def get(self, key: str):
        load_parts()
        return super().get(key)

    def names(self) -> list[str]:
        """All registered names, built-in parts and plugins included."""
        load_parts()
        return sorted(self._module_dict)


# Sub-packages whose modules hold registered parts; each imports all of its modules.
PART_PACKAGES = ("posezoo.models", "posezoo.data", "posezoo.evaluation", "posezoo.engine")


def _child(name: str, parent: Registry | None = None) -> PartRegistry:
    return PartRegistry(name, parent=parent, scope="posezoo")


# Composed models and training wrappers (what mmengine's Runner builds).
MODELS = _child("model", mm.MODELS)
# Parts of a model, one name space per kind of part.
BACKBONES = _child("backbone")
HEADS = _child("head")
TOKENIZERS = _child("tokenizer")
# Checkpoint converters, one per model family (official state dict -> posezoo keys).
CONVERTERS = _child("converter")
# What the data and training work registers.
DATASETS = _child("dataset", mm.DATASETS)
TRANSFORMS = _child("transform", mm.TRANSFORMS)
METRICS = _child("metric", mm.METRICS)
HOOKS = _child("hook", mm.HOOKS)
KEYPOINT_LAYOUTS = _child("keypoint layout")

# Registries that mmengine's Runner builds from with default_scope='posezoo': without a child of
# each root, mmengine warns on every build and falls back to the root.
for _root_name in (
    "RUNNERS", "RUNNER_CONSTRUCTORS", "LOOPS", "STRATEGIES", "DATA_SAMPLERS", "MODEL_WRAPPERS",
    "WEIGHT_INITIALIZERS", "OPTIMIZERS", "OPTIM_WRAPPERS", "OPTIM_WRAPPER_CONSTRUCTORS",
    "PARAM_SCHEDULERS", "EVALUATOR", "TASK_UTILS", "VISUALIZERS", "VISBACKENDS", "LOG_PROCESSORS",
    "INFERENCERS", "FUNCTIONS",
):
    globals()[_root_name] = _child(getattr(mm, _root_name).name, getattr(mm, _root_name))


def load_parts() -> None:
    """Import the built-in part packages and every installed plugin, once."""
    global _plugins_loaded, _loading_plugin
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for package in PART_PACKAGES:
        if importlib.util.find_spec(package) is not None:
            importlib.import_module(package)
    for ep in importlib.metadata.entry_points(group=PLUGIN_GROUP):
        dist = ep.dist.name if ep.dist is not None else "?"
        _loading_plugin = f"plugin {dist} ({ep.name} = {ep.value})"
        try:
            ep.load()
        except KeyError:
            raise
        except Exception as exc:  # a broken plugin must not hide the built-in zoo
            warnings.warn(f"posezoo: could not load {_loading_plugin}: {exc!r}", stacklevel=2)
        finally:
            _loading_plugin = None


def reload_plugins() -> None:
    """Look for plugins again (after installing one in a running process)."""
    global _plugins_loaded
    _plugins_loaded = False
    load_parts()
