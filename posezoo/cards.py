"""Model cards (the Hub's README.md) built from the templates in ``model_cards/``.

Everything on a card comes from the model (``model.meta``: the skeleton contract of its entry), its
registry entry and published weights (licence, source, citation, datasets), a measurement
(parameters, GMACs) and a results file written by ``tools/test.py``; nothing is typed by hand.

Results file (JSON; ``tools/test.py --out results.json`` writes it)::

    {
      "model": "dstformer-lift.h36m-ft",              # what was evaluated
      "checkpoint": "...", "command": "...",           # optional provenance
      "metrics": {
        "mpjpe":  {"value": 37.2, "unit": "mm", "protocol": "h36m-p1", "dataset": "h36m"},
        "pmpjpe": {"value": 31.6, "unit": "mm", "protocol": "h36m-p2", "dataset": "h36m"}
      }
    }

Every metric needs a numeric ``value``, a ``unit`` and a non-empty ``protocol`` id (how the number
was computed, e.g. ``h36m-p1`` = MPJPE after root alignment on S9/S11); ``dataset`` is optional.
"""
from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import EvalResult, ModelCard, ModelCardData

from posezoo.entries import ModelEntry, Weights, get_entry

LIBRARY = "posezoo"
DEFAULT_TEMPLATE = "default.md"
# Licence names of the registry -> Hub licence ids (https://huggingface.co/docs/hub/repositories-licenses).
HUB_LICENCES = {"apache-2.0", "mit", "bsd-2-clause", "bsd-3-clause", "cc-by-4.0", "cc-by-nc-4.0",
                "cc-by-sa-4.0", "cc-by-nc-sa-4.0", "gpl-3.0", "lgpl-3.0", "agpl-3.0", "openrail"}
# Head type -> task id (card tags and the task of eval results).
TASKS = {"LiftHead": "3d-human-pose-estimation", "ActionHeadClassification": "skeleton-based-action-recognition",
         "ActionHeadEmbed": "skeleton-based-action-recognition", "SMPLRegressor": "human-mesh-recovery",
         "PCTTokenizerHead": "pose-tokenization", "PCTClassifierHead": "2d-human-pose-estimation",
         "TokenLiftHead": "3d-human-pose-estimation"}


def template_dir() -> Path:
    """``model_cards/`` of a source checkout, else the copy installed as ``posezoo._model_cards``."""
    source = Path(__file__).resolve().parent.parent / "model_cards"
    if source.is_dir():
        return source
    return Path(str(resources.files("posezoo._model_cards")))


def load_results(results: str | os.PathLike | dict) -> dict:
    """A results file (path or already-parsed dict), checked: every metric has value, unit, protocol."""
    source = str(results) if not isinstance(results, dict) else "results"
    data = results if isinstance(results, dict) else json.loads(Path(results).read_text())
    metrics = data.get("metrics")
    if not isinstance(metrics, dict) or not metrics:
        raise ValueError(f"{source}: no 'metrics' object; expected {{'metrics': {{'mpjpe': {{'value': 37.2, "
                         "'unit': 'mm', 'protocol': 'h36m-p1', 'dataset': 'h36m'}}}}")
    for key, metric in metrics.items():
        if not isinstance(metric, dict) or not isinstance(metric.get("value"), (int, float)):
            raise ValueError(f"{source}: metric {key!r} needs a numeric 'value', got {metric!r}")
        missing = [k for k in ("unit", "protocol") if not isinstance(metric.get(k), str) or
                   (k == "protocol" and not metric[k])]
        if missing:
            raise ValueError(f"{source}: metric {key!r} lacks {missing}: a number without its protocol "
                             "cannot be compared with published results")
    return data


def clip_frames(model: torch.nn.Module) -> int:
    """The clip length T a model is measured at: its fixed input length, receptive field or max frames."""
    backbone = model.backbone
    for attr in ("num_frames", "receptive_field", "max_frames"):
        value = getattr(backbone, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    return 1


def model_stats(model: torch.nn.Module, frames: int | None = None) -> dict[str, Any]:
    """Parameter count and GMACs of one clip (1, T, J, C).

    GMACs are counted by :func:`posezoo.flops.count_flops` (FLOPs / 2 / 1e9; what is counted is in
    ``gmacs_note``) on a copy of the model built on the meta device (no memory, no compute): the
    same number a real forward on the CPU counts. ``gmacs`` is None, with the reason in
    ``gmacs_note``, when the model does not take a (1, T, J, C) pose clip.
    """
    from posezoo.factory import build
    from posezoo.flops import COUNTED, count_flops

    frames = frames or clip_frames(model)
    backbone = model.backbone
    shape = (1, frames, backbone.num_joints, backbone.dim_in)
    stats: dict[str, Any] = {"params": sum(p.numel() for p in model.parameters()), "input_shape": list(shape)}
    try:
        twin = build(model.config, meta=model.meta, device="meta").eval()
        with torch.no_grad():
            flops = count_flops(lambda: twin.head(twin.backbone(torch.zeros(shape, device="meta"))))
        stats["gmacs"] = float(f"{flops / 2e9:.4g}")  # 4 significant digits: small models too
        stats["gmacs_note"] = f"per clip of shape {shape}: {COUNTED}"
    except Exception as exc:  # a model that is not a pose-clip model (e.g. image feature maps in)
        stats["gmacs"] = None
        stats["gmacs_note"] = f"not measured: a {shape} clip does not run through it ({type(exc).__name__})"
    return stats


def hub_licence(licence: str | None) -> dict[str, str]:
    """Card-data licence fields for a registry licence name ("Apache-2.0" -> license: apache-2.0)."""
    if not licence:
        return {"license": "other", "license_name": "unknown"}
    ident = licence.strip().lower()
    if ident in HUB_LICENCES:
        return {"license": ident}
    return {"license": "other", "license_name": licence}


def _entry_of(meta: dict) -> tuple[ModelEntry | None, Weights | None]:
    """The registry entry (and published weights) a model came from, when it is a registry model."""
    for name in (meta.get("weights"), meta.get("name")):
        if isinstance(name, str) and not name.startswith("hf-hub:"):
            try:
                return get_entry(name)
            except KeyError:
                continue
    return None, None


def card_context(model: torch.nn.Module, repo_id: str | None = None, results: str | os.PathLike | dict | None = None,
                 frames: int | None = None) -> tuple[ModelCardData, dict[str, Any]]:
    """Card data (YAML front matter) and template variables for ``model``."""
    from posezoo.data.layouts import get_layout

    meta = dict(model.meta)
    entry, weights = _entry_of(meta)
    name = meta.get("weights") or meta.get("name") or type(model).__name__
    stats = model_stats(model, frames)
    config = model.config
    head_type = config["head"]["type"]
    task = TASKS.get(head_type, "pose-estimation")
    layout = meta.get("layout")
    joints = list(get_layout(layout).joints) if layout else [f"joint_{i}" for i in range(model.backbone.num_joints)]
    inp, out = meta.get("input") or {}, meta.get("output") or {}
    max_frames = getattr(model, "max_frames", None) or meta.get("max_frames")
    weights_licence = (weights.licence if weights and weights.licence else None) or meta.get("licence")
    code_licence = entry.licence if entry else meta.get("licence", "unknown")

    data = load_results(results) if results is not None else None
    metrics = [{"key": key, **m, "dataset": m.get("dataset", "")} for key, m in (data or {}).get("metrics", {}).items()]
    datasets = sorted({m["dataset"] for m in metrics if m["dataset"]} |
                      set(weights.extra.get("datasets", []) if weights else []))
    eval_results = [EvalResult(task_type=task, dataset_type=m["dataset"] or "unspecified",
                               dataset_name=m["dataset"] or "unspecified", metric_type=m["key"],
                               metric_value=m["value"], metric_name=f"{m['key']} ({m['unit']}, {m['protocol']})",
                               metric_config=m["protocol"]) for m in metrics]
    contract = {"name": name, "family": meta.get("family"), "layout": layout, "joints": joints,
                "input": inp, "output": out, "max_frames": max_frames,
                "params": stats["params"], "gmacs": stats["gmacs"], "gmacs_note": stats["gmacs_note"]}
    card_data = ModelCardData(
        library_name=LIBRARY, tags=[LIBRARY, task, "skeleton", "human-motion", *([meta["family"]] if meta.get("family") else [])],
        datasets=datasets or None, model_name=repo_id or name, eval_results=eval_results or None,
        **hub_licence(weights_licence), posezoo=contract)
    variables = {
        "title": repo_id or name,
        "description": (weights.description if weights and weights.description else None)
        or (entry.description if entry else f"A posezoo {config['backbone']['type']} + {head_type} model."),
        "weights_source": weights.source if weights else None,
        "backbone": config["backbone"]["type"], "head": head_type, "family": meta.get("family", "?"),
        "params": f"{stats['params']:,}",
        "compute": (f"{stats['gmacs']} GMACs {stats['gmacs_note']}" if stats["gmacs"] is not None
                    else stats["gmacs_note"]),
        "weights_licence": weights_licence or "unknown", "code_licence": code_licence,
        "layout": layout or "unspecified", "joints": joints,
        "input_channels": model.backbone.dim_in,
        "input_normalisation": inp.get("normalisation"), "input_description": inp.get("description"),
        "output_units": out.get("units", "unspecified"), "output_frame": out.get("frame"),
        "output_root_relative": out.get("root_relative"), "output_description": out.get("description"),
        "max_frames": max_frames or "any",
        "create_name": f"hf-hub:{repo_id}" if repo_id else name,
        "metrics": metrics,
        "results_source": (f"`{data.get('model')}` evaluated by posezoo" + (f" ({data['command']})" if data.get("command") else ""))
        if data else None,
        "citation": entry.citation if entry else meta.get("citation", ""),
    }
    return card_data, variables


def model_card(model: torch.nn.Module, repo_id: str | None = None, results: str | os.PathLike | dict | None = None,
               template: str | os.PathLike | None = None, frames: int | None = None) -> ModelCard:
    """The model card of ``model``, rendered from ``template`` (default ``model_cards/default.md``).

    A template is a Jinja markdown file; it receives ``card_data`` (the YAML front matter) and the
    variables of :func:`card_context`.
    """
    card_data, variables = card_context(model, repo_id, results, frames)
    path = Path(template) if template is not None else template_dir() / DEFAULT_TEMPLATE
    if not path.is_file():
        raise FileNotFoundError(f"model card template {path} not found")
    return ModelCard.from_template(card_data, template_str=path.read_text(), **variables)
