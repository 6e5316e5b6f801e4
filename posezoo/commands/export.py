"""``posezoo export NAME --format onnx|torch-export``: a deployable file of a model."""
from __future__ import annotations

import argparse

NAME = "export"
HELP = "export a model (named with weights, saved folder or hf-hub: id) to ONNX or torch.export"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model")
    parser.add_argument("--format", choices=["onnx", "torch-export"], default="onnx")
    parser.add_argument("--out", help="output file (default NAME.onnx / NAME.pt2)")
    parser.add_argument("--frames", type=int, help="example clip length used for tracing")
    parser.add_argument("--random-init", action="store_true", help="export a named model without weights")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from posezoo._atomic import check_output
    from posezoo.errors import InputError
    from posezoo.export import export_model
    from posezoo.factory import create
    from posezoo.lifting import load_trained

    suffix = ".onnx" if args.format == "onnx" else ".pt2"
    out = check_output(args.out or f"{Path(args.model).name}{suffix}", (suffix,), "--out")
    if args.frames is not None and args.frames < 2:
        raise InputError(f"--frames must be at least 2, got {args.frames}")
    model = create(args.model) if args.random_init else load_trained(args.model)
    export_model(model, out, args.format, args.frames)
    print(f"wrote {out}")
    return 0
