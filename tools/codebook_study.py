"""Codebook collapse study of the PCT tokenizer on real motion capture (Bandai-Namco 2, CC BY-NC 4.0).

Trains a 3D PCT tokenizer on Bandai poses mapped to H36M-17 joints (posezoo.data.MocapPoseDataset:
root-relative, scale-normalised) with posezoo's default recipe (staged training + dead-code restart) and with
official PCT's plain end-to-end recipe, and prints codebook usage (fraction of codes used,
perplexity) and the reconstruction MPJPE (mm) of held-out clips (every 5th clip of the file).

    PYTHONPATH=. python tools/codebook_study.py            # the larger setting (a few minutes on CPU)
    PYTHONPATH=. python tools/codebook_study.py --small    # the setting of tests/test_codebook.py
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import torch

from posezoo.data.datasets import MocapPoseDataset
from posezoo.models.pct import PCTTokenizer, TokenizerRecipe, evaluate_tokenizer, train_tokenizer

DATA = Path(os.environ.get("POSEZOO_DATA", Path(__file__).resolve().parent.parent.parent / "shared" / "data"))

SETTINGS = {
    # tests/test_codebook.py: 32 codes, a few hundred steps
    "small": dict(file="bandai1.npz", frame_step=2, tokenizer=dict(
        encoder=dict(num_blocks=2, hidden_dim=64, token_inter_dim=32, hidden_inter_dim=64),
        decoder=dict(num_blocks=1, hidden_dim=32, token_inter_dim=32, hidden_inter_dim=32),
        codebook=dict(token_num=8, token_dim=16, token_class_num=32)),
        recipe=dict(stage1_steps=200, steps=200, batch_size=128, lr=2e-3)),
    # the larger setting of the report: 256 codes
    "large": dict(file="bandai2.npz", frame_step=4, tokenizer=dict(
        encoder=dict(num_blocks=4, hidden_dim=128, token_inter_dim=64, hidden_inter_dim=128),
        decoder=dict(num_blocks=1, hidden_dim=64, token_inter_dim=64, hidden_inter_dim=64),
        codebook=dict(token_num=16, token_dim=32, token_class_num=256)),
        recipe=dict(stage1_steps=1500, steps=1500, batch_size=256, lr=1e-3)),
}


def bandai_h36m_poses(path: Path, frame_step: int = 4) -> tuple[torch.Tensor, torch.Tensor, float]:
    """(train, held-out) poses (N, 17, 4) of :class:`posezoo.data.MocapPoseDataset` (H36M-17 by the
    registered Bandai conversion, root-relative x, y, z / scale + visibility 1) and the scale in
    metres (the median pelvis-thorax distance of the training poses). Every 5th clip of the file
    is held out (``split_rule="index"``); every ``frame_step``-th frame is kept."""
    data = {split: MocapPoseDataset(path, split=split, split_rule="index", frame_step=frame_step)
            for split in ("train", "test")}
    return data["train"].poses(), data["test"].poses(), data["train"].scale


def run(setting: dict, train: torch.Tensor, test: torch.Tensor, scale: float,
        seed: int = 0) -> Iterator[tuple[str, dict]]:
    """Train one tokenizer per recipe; yields (recipe, its held-out and training usage and MPJPE (mm))."""
    base = TokenizerRecipe(seed=seed, **setting["recipe"])
    recipes = {"default (staged + restart)": base,
               "end-to-end (official)": replace(base, staged=False, dead_code_restart=False,
                                                steps=base.stage1_steps + base.steps)}
    for name, recipe in recipes.items():
        torch.manual_seed(seed)
        tokenizer = PCTTokenizer(**setting["tokenizer"], num_joints=17, joint_dim=3)
        start = time.perf_counter()
        train_tokenizer(tokenizer, train, recipe)
        out = {}
        for split, poses in (("held-out", test), ("train", train)):
            m = evaluate_tokenizer(tokenizer, poses)
            out[split] = {**m, "mpjpe_mm": m["mpjpe"] * scale * 1000}
        out["seconds"] = time.perf_counter() - start
        yield name, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="the test's setting")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    setting = SETTINGS["small" if args.small else "large"]
    train, test, scale = bandai_h36m_poses(DATA / setting["file"], setting["frame_step"])
    V = setting["tokenizer"]["codebook"]["token_class_num"]
    print(f"{setting['file']} -> H36M-17, root-relative / {scale * 1000:.0f} mm: {len(train)} training poses, "
          f"{len(test)} held-out poses; codebook {V} codes; torch threads {torch.get_num_threads()}")
    mean_pose = (test[..., :3] - train[..., :3].mean(0)).norm(dim=-1).mean() * scale * 1000
    print(f"baseline: the mean training pose for every held-out pose, MPJPE {mean_pose:.1f} mm")
    for name, out in run(setting, train, test, scale, args.seed):
        for split in ("held-out", "train"):
            m = out[split]
            print(f"{name:28s} {split:8s} codes used {m['fraction_used'] * 100:5.1f}%  perplexity "
                  f"{m['perplexity']:6.1f}/{V}  MPJPE {m['mpjpe_mm']:6.1f} mm")
        print(f"{name:28s} trained in {out['seconds']:.0f} s")


if __name__ == "__main__":
    from posezoo.cli import run_script

    sys.exit(run_script("tools/codebook_study.py", main))
