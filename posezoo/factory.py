"""``create``, ``save`` and checkpoint conversion: names, folders and files to models and back."""
from __future__ import annotations

import inspect
import json
import math
import os
import warnings
from pathlib import Path
from typing import Any

import torch

from posezoo import __version__
from posezoo._atomic import atomic_path
from posezoo.checkpoint import CheckpointError, load_strict, read_weights, save_weights_atomic
from posezoo.entries import ModelEntry, Weights, all_entries, current_keys, get_entry
from posezoo.errors import InputError, PosezooWarning
from posezoo.models.composed import DERIVED_HEAD_ARGS, PoseModel
from posezoo.precision import resolve_dtype, set_dtype
from posezoo.registry import BACKBONES, CONVERTERS, HEADS

FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CONFIG_KEYS = {"format_version", "library", "posezoo_version", "name", "architecture", "model", "meta"}


def _arg_names(cls: type) -> set[str]:
    return {n for n, p in inspect.signature(cls.__init__).parameters.items()
            if n != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def route_overrides(config: dict, overrides: dict[str, Any]) -> dict:
    """Send each override to the part whose constructor has that argument (backbone first).

    ``{"backbone": {...}, "head": {...}}`` + ``depth=2, dim_out=4`` -> updated copy. A name no part
    takes is an error listing every valid name.
    """
    config = {part: dict(cfg) for part, cfg in config.items()}
    owners = {
        "backbone": _arg_names(_part_class(BACKBONES, config["backbone"]["type"], "backbone")),
        "head": _arg_names(_part_class(HEADS, config["head"]["type"], "head")) - set(DERIVED_HEAD_ARGS),
    }
    for name, value in overrides.items():
        part = next((p for p, names in owners.items() if name in names), None)
        if part is None:
            valid = sorted(owners["backbone"] | owners["head"])
            raise TypeError(f"unknown hyper-parameter {name!r} for {config['backbone']['type']} + "
                            f"{config['head']['type']}; valid: {', '.join(valid)}")
        config[part][name] = value
    return config


def _part_class(registry, name: str, kind: str) -> type:
    cls = registry.get(name)
    if cls is None:
        raise KeyError(f"no {kind} named {name!r} is registered; known: {', '.join(registry.names())}")
    return cls


def _entry_meta(entry: ModelEntry) -> dict[str, Any]:
    return {"name": entry.name, "family": entry.family, "layout": entry.layout, "input": entry.input,
            "output": entry.output, "max_frames": entry.max_frames, "license": entry.license}


def check_config_values(cls: type, values: dict[str, Any], owner: str) -> None:
    """Refuse hyper-parameter values that cannot build a working ``cls``, judged by its constructor's
    annotations and defaults: ``int`` sizes must be whole numbers >= 1 (>= 0 where the default is 0),
    ``float`` values finite, positive where the default is, drop rates in [0, 1), ``bool`` flags
    booleans. ``None`` is allowed where the annotation allows it."""
    params = inspect.signature(cls.__init__).parameters
    for name, value in values.items():
        if name not in params or name == "type":
            continue
        annotation, default = str(params[name].annotation), params[name].default
        has_default = default is not inspect.Parameter.empty
        if value is None and annotation.endswith("| None"):
            continue
        kind = annotation.removesuffix(" | None")
        floor = 0 if has_default and isinstance(default, (int, float)) and default == 0 else None
        problem = None
        if kind == "bool" and not isinstance(value, bool):
            problem = "must be true or false"
        elif kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                problem = "must be a whole number"
            elif value < (0 if floor == 0 else 1):
                problem = f"must be >= {0 if floor == 0 else 1}"
        elif kind == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                problem = "must be a finite number"
            elif "drop" in name:
                problem = None if 0 <= value < 1 else "is a probability: must be in [0, 1)"
            elif value < 0 or (value == 0 and floor is None):
                problem = "must be >= 0" if floor == 0 else "must be > 0"
        if problem:
            raise InputError(f"{owner} {cls.__name__}: {name}={value!r} {problem}")


def build(config: dict, meta: dict | None = None, device: str | torch.device | None = None) -> PoseModel:
    """A ``PoseModel`` from ``{"backbone": ..., "head": ...}``; ``device='meta'`` allocates nothing.
    Values are checked first (:func:`check_config_values`)."""
    for part, registry in (("backbone", BACKBONES), ("head", HEADS)):
        check_config_values(_part_class(registry, config[part]["type"], part), config[part], part)
    with torch.device(device or "cpu"):
        return PoseModel(config["backbone"], config["head"], meta=meta)


def _converter(family: str):
    converter = CONVERTERS.get(family)
    if converter is None:
        raise KeyError(f"no converter for family {family!r}; known: {', '.join(CONVERTERS.names())}")
    return converter


def _convert(state: dict[str, torch.Tensor], family: str, path: str | os.PathLike) -> dict[str, torch.Tensor]:
    try:
        return _converter(family)(state)
    except ValueError as exc:
        raise CheckpointError(f"{path}: {exc}") from exc


def _read_official(path: str | os.PathLike, family: str | None) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint, with ``family``'s allow-list; a file refused for an object that
    another family's official checkpoints hold says so (a wrong ``--family``)."""
    try:
        return read_weights(path, getattr(_converter(family), "safe_globals", ()) if family else ())
    except CheckpointError as exc:
        unsafe = getattr(exc, "unsafe_global", None)
        others = [name for name in CONVERTERS.names() if name != family and unsafe in _global_names(name)]
        if not others:
            raise
        raise CheckpointError(f"{exc} Official {', '.join(others)} checkpoints hold such objects: is the family "
                              f"({family or 'unknown'}) right?") from exc


def _global_names(family: str) -> set[str]:
    """Dotted names of the objects ``family``'s converter allows in a pickle."""
    names = set()
    for item in getattr(CONVERTERS.get(family), "safe_globals", ()):
        obj, name = item if isinstance(item, tuple) else (item, None)
        names.add(name or f"{obj.__module__}.{obj.__qualname__}")
    return names


def convert_checkpoint(path: str | os.PathLike, family: str) -> dict[str, torch.Tensor]:
    """An official checkpoint file of ``family`` as a posezoo state dict."""
    return _convert(_read_official(path, family), family, path)


def load_checkpoint(model: PoseModel, path: str | os.PathLike, family: str | None = None) -> PoseModel:
    """Load an official or posezoo checkpoint into ``model`` strictly."""
    family = family or model.meta.get("family")
    state = _read_official(path, family)
    if set(state) != set(model.state_dict()):  # not already in posezoo's layout
        if family is None:
            raise CheckpointError(f"{path}: keys do not match the model and its family is unknown")
        state = _convert(state, family, path)
    return load_strict(model, state, source=str(path))


def create(name_or_dir: str | os.PathLike | None = None, pretrained: bool = False,
           checkpoint: str | os.PathLike | None = None, *, backbone: str | None = None,
           head: str | None = None, dtype: str | torch.dtype | None = None, **overrides: Any) -> PoseModel:
    """Build a model by name (``"dstformer-lift"``, ``"arch.tag"``), from a saved folder, or from the Hub.

    Args:
        name_or_dir: a registry name, a folder written by :func:`save`, or ``"hf-hub:org/name[@rev]"``.
            May be omitted when ``backbone`` and ``head`` are given.
        pretrained: download and load the entry's published weights (the tag's, or the first).
        checkpoint: a local checkpoint file (official MotionBERT/VideoPose3D/... or posezoo safetensors).
        backbone, head: registered part names (``"dstformer"``, ``"lift"``, ``"action"``, ...) to mix
            and match; ``head`` alone swaps the head of a named entry.
        dtype: ``"bfloat16"`` (or ``torch.bfloat16``): run in bf16 (:func:`posezoo.precision.set_dtype`:
            matmul weights cast once, fp32 where it matters, fp32 in and out; fp32 with a warning on
            a CPU without bf16). None or ``"float32"``: fp32.
        **overrides: hyper-parameters by their official names, routed to the part that owns them.
    """
    dtype = resolve_dtype(dtype)  # a bad dtype is refused before anything is built
    if name_or_dir is None:
        if backbone is None or head is None:
            raise TypeError("create() needs a model name, or both backbone= and head=")
        config = route_overrides({"backbone": {"type": backbone}, "head": {"type": head}}, overrides)
        model = build(config, meta={"name": f"{backbone}-{head}"}, device="meta" if checkpoint else None)
        if checkpoint is not None:
            load_checkpoint(model, checkpoint)
        return set_dtype(model.eval(), dtype)
    source = str(name_or_dir)
    if source.startswith("hf-hub:"):
        from posezoo.hub import create_from_hub

        return set_dtype(create_from_hub(source[len("hf-hub:"):], checkpoint=checkpoint, **overrides), dtype)
    if Path(source).is_dir():
        model = load_dir(source, **overrides)
    else:
        entry, weights = get_entry(source)
        if pretrained and weights is None:
            if not entry.weights:
                raise ValueError(f"{entry.name} has no published weights; train it or pass checkpoint=")
            weights = next(iter(entry.weights.values()))
        config = entry.model_config()
        meta = _entry_meta(entry)
        if backbone is not None:
            raise TypeError("backbone= goes with head= and no model name; to change a named model's "
                            "backbone, pick another entry")
        if head is not None:
            if pretrained:
                raise ValueError("pretrained weights are for the entry's own head; drop head= or pretrained=")
            config["head"] = {"type": head}
            meta["name"] = f"{entry.name}+{head}"
        config = route_overrides(config, overrides)
        lazy = pretrained or checkpoint is not None
        model = build(config, meta=meta, device="meta" if lazy else None)
        if pretrained:
            model = _load_published(model, entry, weights)
    if checkpoint is not None:
        load_checkpoint(model, checkpoint)
    return set_dtype(model.eval(), dtype)


EMBEDDED_WEIGHTS = Path(__file__).resolve().parent / "weights"


def _load_published(model: PoseModel, entry: ModelEntry, weights: Weights) -> PoseModel:
    """Weights shipped inside the package (``embedded = "<file>"`` in the entry) or from the Hub."""
    from posezoo.hub import download_weights, verify_file

    if "embedded" in weights.extra:
        path = EMBEDDED_WEIGHTS / weights.extra["embedded"]
        verify_file(path, weights.sha256, f"{entry.name}.{weights.tag} (shipped with posezoo)")
    else:
        path = download_weights(entry, weights)
    model.meta["weights"] = f"{entry.name}.{weights.tag}"
    return load_strict(model, read_weights(path), source=f"{entry.name}.{weights.tag} ({path})")


def read_config(folder: str | os.PathLike) -> dict:
    """The ``config.json`` of a saved model, checked for format version and parts; keys this posezoo
    does not know are dropped with a :class:`~posezoo.errors.PosezooWarning`. Files of an earlier
    posezoo read as today's: :func:`~posezoo.entries.current_keys`, and ``architecture`` the entry
    name where they wrote the class name."""
    path = Path(folder) / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{folder} has no {CONFIG_NAME}: not a model saved by posezoo.save")
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise ValueError(f"{path} holds a JSON {type(config).__name__}, not an object")
    config = current_keys(config)
    if config.get("architecture") == PoseModel.__name__:
        config["architecture"] = architecture(config.get("meta") or {})
    version = config.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(f"{path} has format_version {version!r}; this posezoo ({__version__}) reads "
                         f"up to {FORMAT_VERSION}: upgrade posezoo")
    unknown = sorted(set(config) - CONFIG_KEYS)
    if unknown:  # a newer posezoo may add keys: read what this one knows, say what it skips
        warnings.warn(f"{path} has unknown keys {unknown} (written by a newer posezoo?); ignored",
                      PosezooWarning, stacklevel=2)
        config = {k: v for k, v in config.items() if k in CONFIG_KEYS}
    model = config.get("model")
    if not isinstance(model, dict) or not {"backbone", "head"} <= set(model):
        raise ValueError(f"{path}: 'model' must hold 'backbone' and 'head' configs")
    _part_class(BACKBONES, model["backbone"].get("type"), "backbone")
    _part_class(HEADS, model["head"].get("type"), "head")
    return config


def load_dir(folder: str | os.PathLike, **overrides: Any) -> PoseModel:
    """Rebuild a model saved with :func:`save` and load its weights strictly."""
    config = read_config(folder)
    weights = Path(folder) / WEIGHTS_NAME
    if not weights.is_file():
        raise FileNotFoundError(f"{folder} has no {WEIGHTS_NAME}")
    model = build(route_overrides(config["model"], overrides), meta=config.get("meta"), device="meta")
    return load_strict(model, read_weights(weights), source=str(weights))


def architecture(meta: dict) -> str | None:
    """The registry entry a model is rebuilt from (timm's ``architecture``), None for a model composed
    otherwise (``create(backbone=, head=)``, a swapped head): its ``model`` config rebuilds it."""
    name = meta.get("name")
    return name if name in all_entries() else None


def model_config_json(model: PoseModel) -> dict[str, Any]:
    """What ``config.json`` holds for ``model``."""
    return {
        "format_version": FORMAT_VERSION,
        "library": "posezoo",
        "posezoo_version": __version__,
        "name": model.meta.get("name"),
        "architecture": architecture(model.meta),
        "model": model.config,
        "meta": model.meta,
    }


# Not huggingface_hub.PyTorchModelHubMixin: its from_pretrained loads with strict=False (missing keys pass
# silently) and builds from any config; posezoo checks config.json against registered parts, loads strictly.
def save(model: PoseModel, folder: str | os.PathLike) -> Path:
    """Write ``model.safetensors`` + ``config.json`` into ``folder`` (atomically, file by file)."""
    if not isinstance(model, PoseModel):
        raise TypeError(f"posezoo.save takes a model made by posezoo.create, got {type(model).__name__}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = model_config_json(model)
    save_weights_atomic(model.state_dict(), folder / WEIGHTS_NAME,
                        metadata={"format": "pt", "posezoo_config": json.dumps(config)})
    with atomic_path(folder / CONFIG_NAME) as tmp:
        tmp.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return folder
