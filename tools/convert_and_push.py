"""Turn an official checkpoint into a Hub-ready posezoo folder and publish it.

    python tools/convert_and_push.py ARCH.TAG CHECKPOINT [--out DIR] [--dry-run] [--parity FIXTURE]
                                     [--results results.json] [--set key=value ...] [--repo-id ID]

1. Converts CHECKPOINT (the file of the entry's ``source``) with the entry's converter family
   (``posezoo.factory.convert_checkpoint``) and loads it strictly into the ARCH model.
2. Checks parity when a fixture is given: a safetensors file with ``fixture/input`` and
   ``fixture/output`` recorded from the official code on the same weights (the format of
   shared/fixtures), compared at 1e-5; and always checks that the written folder reloads to
   bit-identical outputs.
3. Writes model.safetensors + config.json + README.md (card from model_cards/, metrics from
   ``--results``) to --out and prints the sha256 line to record in registry/official-weights.toml.
4. Unless --dry-run, pushes the folder to the entry's ``hf_hub_id`` (or --repo-id) in one commit.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's posezoo first

TOLERANCE = 1e-5


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("name", help="ARCH.TAG of registry/official-weights.toml (or another entry file)")
    p.add_argument("checkpoint", help="the official checkpoint file")
    p.add_argument("--out", help="folder to write (default: a temporary folder)")
    p.add_argument("--dry-run", action="store_true", help="write the folder only; do not push")
    p.add_argument("--parity", help="fixture safetensors with fixture/input and fixture/output")
    p.add_argument("--results", help="results JSON of tools/test.py for the card's metrics")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="hyper-parameter override (JSON value), e.g. for a small fixture checkpoint")
    p.add_argument("--repo-id", help="push here instead of the entry's hf_hub_id")
    p.add_argument("--revision", help="branch to push to")
    p.add_argument("--endpoint", help="Hub endpoint")
    return p.parse_args(argv)


def check_parity(model, fixture: str) -> float:
    """Max abs error of ``model`` against the official outputs recorded in ``fixture``."""
    import torch
    from safetensors.torch import load_file

    tensors = load_file(fixture)
    missing = [k for k in ("fixture/input", "fixture/output") if k not in tensors]
    if missing:
        raise ValueError(f"{fixture} lacks {missing}: not a parity fixture")
    with torch.no_grad():
        out = model(tensors["fixture/input"])
    expected = tensors["fixture/output"]
    if out.shape != expected.shape:
        raise ValueError(f"parity: output shape {tuple(out.shape)} vs official {tuple(expected.shape)}")
    return (out - expected).abs().max().item()


def convert(args: argparse.Namespace, out: Path) -> Path:
    """Steps 1-3; returns the folder."""
    import torch

    import posezoo
    from posezoo.cards import clip_frames
    from posezoo.checkpoint import load_strict
    from posezoo.entries import get_entry
    from posezoo.factory import convert_checkpoint
    from posezoo.hub import export_folder

    entry, weights = get_entry(args.name)
    if weights is None:
        raise ValueError(f"{args.name}: name the published weights as ARCH.TAG (see `posezoo info {args.name}`)")
    family = weights.extra.get("converter", entry.family)
    overrides = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    model = posezoo.create(entry.name, **overrides)
    load_strict(model, convert_checkpoint(args.checkpoint, family), source=args.checkpoint)
    model.meta["weights"] = f"{entry.name}.{weights.tag}"
    if args.parity:
        err = check_parity(model, args.parity)
        print(f"parity against {args.parity}: max abs error {err:.2e} (tolerance {TOLERANCE:.0e})")
        if not err <= TOLERANCE:
            raise ValueError(f"parity failed: max abs error {err:.2e} > {TOLERANCE:.0e}; not publishing")
    else:
        print("parity: no fixture given (--parity), only the round trip is checked")
    export_folder(model, out, repo_id=args.repo_id or weights.hf_hub_id, results=args.results)
    x = torch.randn(1, clip_frames(model), model.backbone.num_joints, model.backbone.dim_in)
    with torch.no_grad():
        if not torch.equal(posezoo.create(str(out))(x), model(x)):
            raise ValueError(f"{out} does not reload to the converted model's outputs")
    digest = hashlib.sha256((out / "model.safetensors").read_bytes()).hexdigest()
    print(f"wrote {out}: {', '.join(sorted(p.name for p in out.iterdir()))}")
    print(f'record in registry/official-weights.toml under ["{entry.name}".weights.{weights.tag}]:\n'
          f'sha256 = "{digest}"')
    return out


def main(argv: list[str] | None = None) -> int:
    from posezoo.entries import get_entry
    from posezoo.hub import push_to_hub

    args = parse_args(argv)
    try:
        _, weights = get_entry(args.name)
        if not args.dry_run and weights is not None and weights.extra.get("redistributable") is False:
            raise ValueError(f"{args.name} is marked redistributable = false (license: {weights.license}); "
                             "convert it with --dry-run for your own use, do not publish it")
        with tempfile.TemporaryDirectory(prefix="posezoo-convert-") as tmp:
            out = convert(args, Path(args.out or tmp))
            if args.dry_run:
                return 0
            repo_id = args.repo_id or weights.hf_hub_id
            if not repo_id:
                raise ValueError(f"{args.name} has no hf_hub_id; pass --repo-id")
            info = push_to_hub(out, repo_id, revision=args.revision, endpoint=args.endpoint,
                               commit_message=f"{args.name} converted from {weights.source or args.checkpoint}")
            print(f"pushed {repo_id}: {info.commit_url}")
    except (ValueError, KeyError, FileNotFoundError, TypeError) as exc:
        print(f"convert_and_push: error: {exc.args[0] if isinstance(exc, KeyError) else exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    from posezoo.cli import run_script

    sys.exit(run_script("tools/convert_and_push.py", main))
