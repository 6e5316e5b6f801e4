"""Model cards (the Hub's README.md) built from the templates in ``model_cards/``.

Everything on a card comes from the model (``model.meta``: the skeleton contract of its entry), its
registry entry and published weights (license, source, citation, datasets), a measurement
(parameters, GMACs) and a results file written by ``posezoo test``; nothing is typed by hand.

The YAML front matter is huggingface_hub's :class:`~huggingface_hub.ModelCardData`: ``license`` (a
Hub license id, else ``other`` + ``license_name``), ``library_name: posezoo``, ``pipeline_tag``,
``tags``, ``datasets`` (Hub dataset ids only) and ``model-index`` eval results. The skeleton
contract is in the card's body and in ``config.json``'s ``meta``.

Results file (JSON; ``posezoo test --out results.json`` writes it)::

    {
      "model": "dstformer-lift.h36m-ft",              # what was evaluated
      "checkpoint": "...", "command": "...",           # optional provenance
      "metrics": {
        "mpjpe":  {"value": 37.2, "unit": "mm", "protocol": "h36m-p1", "dataset": "h36m"},
        "pmpjpe": {"value": 31.6, "unit": "mm", "protocol": "h36m-p2", "dataset": "h36m"}
      }
    }

Every metric needs a numeric ``value``, a ``unit`` and a non-empty ``protocol`` id (how the number
was computed, e.g. ``h36m-p1`` = MPJPE after root alignment on S9/S11); ``dataset`` is optional: a
key of :data:`DATASETS` makes the metric a ``model-index`` eval result, any other label stays in the
card's table only.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import EvalResult, ModelCard, ModelCardData

from posezoo.entries import ModelEntry, Weights, get_entry

LIBRARY = "posezoo"
DEFAULT_TEMPLATE = "default.md"
# Hub license ids (https://huggingface.co/docs/hub/repositories-licenses) the registry's licenses use.
HUB_LICENSES = {"apache-2.0", "mit", "bsd-2-clause", "bsd-3-clause", "cc-by-4.0", "cc-by-nc-4.0",
                "cc-by-sa-4.0", "cc-by-nc-sa-4.0", "gpl-3.0", "lgpl-3.0", "agpl-3.0", "openrail"}
# Head type -> (Hub pipeline_tag, task tag). The Hub's pipeline tags (huggingface.js, tasks/src/pipelines.ts)
# take images, video, text, audio or tables, none a skeleton sequence, so each is the nearest: graph-ml for
# skeleton (a graph of joints) in, joints/mesh/codes out, where keypoint-detection would promise image input;
# video-classification for labelling a clip of motion; keypoint-detection (subtask pose-estimation) for PCT's
# classifier, which does take image features.
TASKS = {"LiftHead": ("graph-ml", "3d-human-pose-estimation"),
         "TokenLiftHead": ("graph-ml", "3d-human-pose-estimation"),
         "ActionHeadClassification": ("video-classification", "skeleton-based-action-recognition"),
         "ActionHeadEmbed": ("video-classification", "skeleton-based-action-recognition"),
         "SMPLRegressor": ("graph-ml", "human-mesh-recovery"),
         "PCTTokenizerHead": ("graph-ml", "pose-tokenization"),
         "PCTClassifierHead": ("keypoint-detection", "2d-human-pose-estimation")}


@dataclass(frozen=True)
class Dataset:
    """A dataset the registry's ``datasets`` and results files name by key."""

    name: str
    url: str
    hub_id: str | None = None  # the Hub dataset repo of its owner, where there is one


# None of these is published on the Hub by its owners (most are license-gated); third-party re-uploads are
# not linked. Their keys still name them in eval results (model-index needs a dataset type).
DATASETS = {
    "h36m": Dataset("Human3.6M", "http://vision.imar.ro/human3.6m"),
    "amass": Dataset("AMASS", "https://amass.is.tue.mpg.de"),
    "posetrack": Dataset("PoseTrack", "https://posetrack.net"),
    "instavariety": Dataset("InstaVariety", "https://github.com/akanazawa/human_dynamics"),
    "coco": Dataset("COCO keypoints", "https://cocodataset.org"),
    "ntu60": Dataset("NTU RGB+D 60", "https://rose1.ntu.edu.sg/dataset/actionRecognition/"),
    "3dpw": Dataset("3DPW", "https://virtualhumans.mpi-inf.mpg.de/3DPW/"),
    "bandai-namco-motion": Dataset("Bandai-Namco-Research-Motiondataset 1 and 2 (CC BY-NC 4.0)",
                                   "https://github.com/BandaiNamcoResearchInc/Bandai-Namco-Research-Motiondataset"),
    "cmu-mocap": Dataset("CMU Graphics Lab Motion Capture Database", "http://mocap.cs.cmu.edu"),
    "deepmimic": Dataset("DeepMimic reference motions (MIT / zlib)", "https://github.com/xbpeng/DeepMimic"),
}


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

    Not mmengine.analysis: its FlopAnalyzer counts ``aten::scaled_dot_product_attention`` as 0 (measured:
    a 1-block DSTformer at T=27, 63.7 M MACs there vs 67.5 M here, the gap growing with T^2).

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


def hub_license(license: str | None) -> dict[str, str]:
    """Card-data license fields for a registry license ("Apache-2.0" -> license: apache-2.0). Any other
    text gives ``license: other`` and a ``license_name`` id made of its first clause ("MIT (the code's);
    trained on Human3.6M ..." -> "mit"); the card's body has the whole text."""
    ident = (license or "").strip().lower()
    if ident in HUB_LICENSES:
        return {"license": ident}
    first = re.split(r"[(;]", ident)[0]
    return {"license": "other", "license_name": "-".join(re.findall(r"[a-z0-9.]+", first)) or "unknown"}


def dataset_entries(keys) -> list[dict[str, str | None]]:
    """Name, url and Hub id of each dataset key (a key :data:`DATASETS` lacks stands for itself)."""
    out = []
    for key in keys:
        known = DATASETS.get(key)
        out.append({"key": key, "name": known.name if known else key, "url": known.url if known else None,
                    "hub_id": known.hub_id if known else None})
    return out


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
    pipeline_tag, task = TASKS.get(head_type, ("graph-ml", "pose-estimation"))
    layout = meta.get("layout")
    joints = list(get_layout(layout).joints) if layout else [f"joint_{i}" for i in range(model.backbone.num_joints)]
    inp, out = meta.get("input") or {}, meta.get("output") or {}
    max_frames = getattr(model, "max_frames", None) or meta.get("max_frames")
    weights_license = (weights.license if weights and weights.license else None) or meta.get("license")
    code_license = entry.license if entry else meta.get("code_license") or meta.get("license", "unknown")

    data = load_results(results) if results is not None else None
    metrics = [{"key": key, **m, "dataset": m.get("dataset", "")} for key, m in (data or {}).get("metrics", {}).items()]
    trained = weights.extra.get("datasets", []) if weights else []
    scored = [m for m in metrics if m["dataset"] in DATASETS]  # model-index wants a dataset id
    eval_results = [EvalResult(task_type=pipeline_tag, task_name=task, metric_type=m["key"], metric_value=m["value"],
                               dataset_type=DATASETS[m["dataset"]].hub_id or m["dataset"],
                               dataset_name=DATASETS[m["dataset"]].name, metric_config=m["protocol"],
                               metric_name=f"{m['key']} ({m['unit']}, {m['protocol']})") for m in scored]
    hub_datasets = sorted({DATASETS[k].hub_id for k in [*trained, *(m["dataset"] for m in scored)]
                           if k in DATASETS and DATASETS[k].hub_id})
    card_data = ModelCardData(
        library_name=LIBRARY, pipeline_tag=pipeline_tag,
        tags=[LIBRARY, task, "skeleton", "human-motion", *([meta["family"]] if meta.get("family") else [])],
        datasets=hub_datasets or None, model_name=repo_id or name, eval_results=eval_results or None,
        **hub_license(weights_license))
    variables = {
        "title": repo_id or name,
        "description": (weights.description if weights and weights.description else None)
        or (entry.description if entry else f"A posezoo {config['backbone']['type']} + {head_type} model."),
        "weights_source": weights.source if weights else None,
        "backbone": config["backbone"]["type"], "head": head_type, "family": meta.get("family", "?"),
        "params": f"{stats['params']:,}",
        "compute": (f"{stats['gmacs']} GMACs {stats['gmacs_note']}" if stats["gmacs"] is not None
                    else stats["gmacs_note"]),
        "weights_license": weights_license or "unknown", "code_license": code_license,
        "training_data": dataset_entries(trained), "trained_on": (meta.get("data") or {}).get("sources") or [],
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
