"""Exporting models for deployment: ONNX or a torch.export program, with a dynamic frame axis
where the architecture allows any clip length (fixed-window models keep their window)."""
from __future__ import annotations

import os
from pathlib import Path

import torch

from posezoo._atomic import atomic_path
from posezoo.models.composed import PoseModel


def dynamic_shapes(model: PoseModel, x: torch.Tensor) -> tuple[dict, ...]:
    """Batch always dynamic; frames dynamic unless the backbone takes a fixed window or its input
    is not a pose clip (a backbone with its own ``example_input``)."""
    from torch.export import Dim

    axes = {0: Dim("batch", min=1, max=4096)}
    backbone = model.backbone
    if getattr(backbone, "num_frames", None) is None and not hasattr(backbone, "example_input"):
        axes[1] = Dim("frames", min=2, max=model.max_frames or 100_000)
    return (axes,)


def export_model(model: PoseModel, out: str | os.PathLike, fmt: str = "onnx", frames: int | None = None) -> Path:
    """Write ``model`` to ``out`` as ``fmt`` = ``onnx`` (needs the onnx and onnxscript packages)
    or ``torch-export`` (a ``.pt2`` program for ``torch.export.load``)."""
    out = Path(out)
    model = model.eval()
    x = model.example_input(batch=2, frames=frames)
    shapes = dynamic_shapes(model, x)
    if fmt not in ("onnx", "torch-export"):
        raise ValueError(f"unknown export format {fmt!r}: use onnx or torch-export")
    if fmt == "onnx":
        try:
            import onnxscript  # noqa: F401  (the exporter needs it)
        except ImportError as exc:
            raise ValueError("ONNX export needs: pip install 'posezoo[export]'") from exc
    with atomic_path(out, keep_suffix=True) as tmp:  # torch.export.save wants a .pt2 name
        if fmt == "torch-export":
            torch.export.save(torch.export.export(model, (x,), dynamic_shapes=shapes), tmp)
        else:
            torch.onnx.export(model, (x,), tmp, dynamic_shapes=shapes, dynamo=True,
                              input_names=["keypoints"], output_names=["output"])
    return out
