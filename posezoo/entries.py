"""The named model entries: data files in ``registry/*.toml``, read without importing torch.

One TOML file per family; each table is one entry::

    ["dstformer-lift"]
    family = "dstformer"
    backbone = { type = "DSTformer", dim_feat = 512, ... }
    head = { type = "LiftHead", dim_out = 3 }
    layout = "h36m-17"
    ...
    ["dstformer-lift".weights.h36m-ft]      # -> "dstformer-lift.h36m-ft" (timm's arch.tag)
    hf_hub_id = "..."

A name is ``arch`` or ``arch.tag``; the tag picks one of the entry's published weights.
"""
from __future__ import annotations

import difflib
import fnmatch
import functools
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

REQUIRED = ("family", "backbone", "head", "layout", "input", "output", "params", "license")
# Keys spelled otherwise by earlier posezoo (registry files, config.json meta) -> today's spelling.
LEGACY_KEYS = {"licence": "license", "code_licence": "code_license"}


@dataclass(frozen=True)
class Weights:
    """One set of published weights of an entry (``arch.tag``)."""

    tag: str
    hf_hub_id: str | None = None
    revision: str | None = None
    filename: str = "model.safetensors"
    sha256: str | None = None
    source: str | None = None  # where the original (official) checkpoint comes from
    license: str | None = None
    description: str = ""
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ModelEntry:
    """A named model: how to build it and the contract of its inputs and outputs."""

    name: str
    family: str
    backbone: dict
    head: dict
    layout: str  # keypoint layout of inputs and outputs, e.g. "h36m-17"
    input: dict  # {"normalisation": ..., "channels": [...], "description": ...}
    output: dict  # {"units": ..., "frame": ..., ...}
    params: int
    license: str
    max_frames: int | None = None
    description: str = ""
    citation: str = ""
    source_file: str = ""
    weights: dict[str, Weights] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def model_config(self) -> dict:
        """The mmengine-style config of the composed model."""
        return {"backbone": dict(self.backbone), "head": dict(self.head)}

    def info(self) -> dict[str, Any]:
        """Everything a user needs to know about the entry, as plain data."""
        return {
            "name": self.name,
            "family": self.family,
            "description": self.description,
            "config": self.model_config(),
            "layout": self.layout,
            "input": self.input,
            "output": self.output,
            "max_frames": self.max_frames,
            "params": self.params,
            "license": self.license,
            "citation": self.citation,
            "weights": {
                f"{self.name}.{tag}": {k: v for k, v in w.__dict__.items() if v not in (None, {}, "")}
                for tag, w in self.weights.items()
            },
            **self.extra,
        }


def current_keys(data: Any) -> Any:
    """``data`` (dicts and lists, at any depth) with the keys of :data:`LEGACY_KEYS` renamed: files
    written by an earlier posezoo read as today's (``licence`` -> ``license``)."""
    if isinstance(data, dict):
        return {LEGACY_KEYS.get(k, k): current_keys(v) for k, v in data.items()}
    if isinstance(data, list):
        return [current_keys(v) for v in data]
    return data


def entry_dirs() -> list[Path]:
    """Where entry files live: ``registry/`` of a source checkout, else the installed copy."""
    source = Path(__file__).resolve().parent.parent / "registry"
    if source.is_dir():
        return [source]
    return [Path(str(resources.files("posezoo._entries")))]


def _parse_weights(tables: dict) -> dict[str, Weights]:
    fields = Weights.__dataclass_fields__
    return {tag: Weights(tag=tag, **{k: v for k, v in w.items() if k in fields and k != "extra"},
                         extra={k: v for k, v in w.items() if k not in fields})
            for tag, w in tables.items()}


def _parse(name: str, table: dict, source: str) -> ModelEntry:
    table = current_keys(table)
    missing = [k for k in REQUIRED if k not in table]
    if missing:
        raise ValueError(f"entry {name!r} in {source} lacks {missing}")
    table = dict(table)
    weights = _parse_weights(table.pop("weights", {}))
    known = {k: table.pop(k) for k in list(table) if k in ModelEntry.__dataclass_fields__}
    return ModelEntry(name=name, source_file=source, weights=weights, extra=table, **known)


@functools.cache
def all_entries() -> dict[str, ModelEntry]:
    """Every named entry, by name.

    A table that holds only ``weights`` (``["arch".weights.tag]`` in another file than the one
    defining ``arch``) adds published weights to that entry.
    """
    entries: dict[str, ModelEntry] = {}
    extra_weights: list[tuple[str, dict, str]] = []
    for folder in entry_dirs():
        for path in sorted(folder.glob("*.toml")):
            with open(path, "rb") as f:
                data = tomllib.load(f)
            for name, table in data.items():
                if set(table) == {"weights"}:
                    extra_weights.append((name, table, path.name))
                    continue
                if name in entries:
                    raise ValueError(f"entry {name!r} defined in {entries[name].source_file} and {path.name}")
                entries[name] = _parse(name, table, path.name)
    for name, table, source in extra_weights:
        if name not in entries:
            raise ValueError(f"{source} adds weights to {name!r}, which no entry file defines")
        entry = entries[name]
        added = _parse_weights(current_keys(table["weights"]))
        clash = sorted(set(added) & set(entry.weights))
        if clash:
            raise ValueError(f"weights {clash} of {name!r} defined in {entry.source_file} and {source}")
        entry.weights.update(added)
    return entries


def split_name(name: str) -> tuple[str, str | None]:
    """``"arch.tag"`` -> ``("arch", "tag")``; ``"arch"`` -> ``("arch", None)``."""
    arch, _, tag = name.partition(".")
    return arch, (tag or None)


def get_entry(name: str) -> tuple[ModelEntry, Weights | None]:
    """The entry and, for ``arch.tag``, its weights. Unknown names raise with close matches."""
    arch, tag = split_name(name)
    entries = all_entries()
    if arch not in entries:
        close = difflib.get_close_matches(arch, list(entries), n=5, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise KeyError(f"unknown model {name!r}.{hint} `posezoo list` shows all names.")
    entry = entries[arch]
    if tag is None:
        return entry, None
    if tag not in entry.weights:
        tags = ", ".join(f"{arch}.{t}" for t in entry.weights) or "none"
        raise KeyError(f"model {arch!r} has no weights tagged {tag!r}; published weights: {tags}")
    return entry, entry.weights[tag]


def list_models(pattern: str | list[str] = "*", pretrained: bool = False) -> list[str]:
    """Names matching fnmatch ``pattern`` (or any of a list of patterns).

    Each entry is listed as ``arch`` followed by its ``arch.tag`` names, one per published set of
    weights. With ``pretrained=True`` only the ``arch.tag`` names are listed.
    """
    patterns = [pattern] if isinstance(pattern, str) else list(pattern)
    names: list[str] = []
    for arch, entry in sorted(all_entries().items()):
        candidates = [] if pretrained else [arch]
        candidates += [f"{arch}.{tag}" for tag in entry.weights]
        for candidate in candidates:
            if any(fnmatch.fnmatchcase(candidate, p) or fnmatch.fnmatchcase(arch, p) for p in patterns):
                names.append(candidate)
    return names


def model_info(name: str) -> dict[str, Any]:
    """The entry of ``name`` as plain data (config, layout, normalisation, units, params, ...)."""
    entry, weights = get_entry(name)
    info = entry.info()
    if weights is not None:
        info["selected_weights"] = f"{entry.name}.{weights.tag}"
    return info
