"""``posezoo convert --family F IN OUT.safetensors``: an official checkpoint to posezoo's keys."""
from __future__ import annotations

import argparse

NAME = "convert"
HELP = "convert an official checkpoint (MotionBERT .bin, VideoPose3D .bin, ...) to posezoo safetensors"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--family", required=True, help="model family, e.g. dstformer")
    parser.add_argument("--model", help="check the result strictly against this named model (with overrides "
                                        "given as --set key=value)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="hyper-parameter override for --model (JSON value)")
    parser.add_argument("input")
    parser.add_argument("output")


def _overrides(items: list[str]) -> dict:
    """``--set key=value`` items as {key: JSON value}, or InputError naming the bad one."""
    import json

    from posezoo.errors import InputError

    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        try:
            if not (sep and key):
                raise ValueError("expected KEY=VALUE")
            overrides[key] = json.loads(value)
        except ValueError as exc:
            raise InputError(f"--set {item}: not KEY=VALUE with a JSON value ({exc}); "
                             "strings need quotes: --set 'key=\"text\"'") from None
    return overrides


def run(args: argparse.Namespace) -> int:
    from posezoo._atomic import check_output
    from posezoo.checkpoint import save_weights_atomic
    from posezoo.factory import convert_checkpoint

    check_output(args.output, (".safetensors",), "output")
    overrides = _overrides(args.set)
    state = convert_checkpoint(args.input, args.family)
    if args.model:
        from posezoo.checkpoint import load_strict
        from posezoo.factory import create

        load_strict(create(args.model, **overrides), state, source=args.input)
    save_weights_atomic(state, args.output, metadata={"format": "pt", "converted_from": args.input,
                                                      "family": args.family})
    print(f"wrote {args.output}: {len(state)} tensors, {sum(t.numel() for t in state.values()):,} parameters")
    return 0
