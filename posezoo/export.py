"""Exporting models for deployment: ONNX or a torch.export program, with a dynamic frame axis
where the architecture allows any clip length (fixed-window models keep their window). An ONNX
file holds its weights (a ``<name>.onnx.data`` beside it only above protobuf's 2 GB limit)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from posezoo._atomic import atomic_path
from posezoo.errors import OutputError
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
        program = torch.onnx.export(model, (x,), None, dynamic_shapes=shapes, dynamo=True, verbose=False,
                                    input_names=["keypoints"], output_names=["output"])
        save_onnx(program, out)
        return out
    with atomic_path(out, keep_suffix=True) as tmp:  # torch.export.save wants a .pt2 name
        torch.export.save(torch.export.export(model, (x,), dynamic_shapes=shapes), tmp)
    return out


def save_onnx(program, out: Path, external_data: bool | None = None) -> None:
    """Write a ``torch.onnx.ONNXProgram`` as one self-contained ``out`` (every weight embedded), or,
    for weights over protobuf's 2 GB limit (or ``external_data=True``), ``out`` with ``<out>.data``
    beside it, where the ``.onnx`` looks for it: the two files move together. Both are written in a
    hidden folder beside ``out`` and renamed into place (the weights first); a stale ``<out>.data``
    of an earlier export is removed."""
    data = out.with_name(f"{out.name}.data")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as folder:
            staged = Path(folder) / out.name
            program.save(staged, external_data=external_data)  # None: external above 2 GB only
            staged_data = staged.with_name(data.name)
            if staged_data.exists():
                os.replace(staged_data, data)
            elif data.exists():
                data.unlink()
            os.replace(staged, out)
    except OSError as exc:
        raise OutputError(f"cannot write {out}: {exc.strerror or exc}") from exc
