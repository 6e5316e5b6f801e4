"""Codebook collapse study of the PCT tokenizer on real motion capture (Bandai-Namco 2, CC BY-NC 4.0).

Trains a 3D PCT tokenizer on Bandai-2 poses mapped to an H36M-17-like joint set (root-relative,
scale-normalised) with posezoo's default recipe (staged training + dead-code restart) and with
official PCT's plain end-to-end recipe, and prints codebook usage (fraction of codes used,
perplexity) and the reconstruction MPJPE (mm) of held-out clips (clip number % 5 == 0).

    PYTHONPATH=. python tools/codebook_study.py            # the larger setting (a few minutes on CPU)
    PYTHONPATH=. python tools/codebook_study.py --small    # the setting of tests/test_codebook.py
"""
from __future__ import annotations

import argparse
import os
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from posezoo.models.pct import PCTTokenizer, TokenizerRecipe, evaluate_tokenizer, train_tokenizer

DATA = Path(os.environ.get("POSEZOO_DATA", Path(__file__).resolve().parent.parent.parent / "shared" / "data"))

# H36M-17 order (VideoPose3D) from Bandai's 21 joints (reference/data.md section 3). The pelvis is the
# mean of the hip joints; spine/thorax/neck/head are approximate: Spine, Chest, Neck and Head.
BANDAI_TO_H36M = [None, "UpperLeg_R", "LowerLeg_R", "Foot_R", "UpperLeg_L", "LowerLeg_L", "Foot_L",
                  "Spine", "Chest", "Neck", "Head", "UpperArm_L", "LowerArm_L", "Hand_L",
                  "UpperArm_R", "LowerArm_R", "Hand_R"]
THORAX = 8

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
    """(train, held-out) poses (N, 17, 4) = root-relative x, y, z / scale + visibility 1, and the
    scale in metres (the median pelvis-thorax distance of the training poses). Clips whose number
    % 5 == 0 are held out; every ``frame_step``-th frame is kept."""
    data = np.load(path)
    names = [str(n) for n in data["joint_names"]]
    offsets, positions = data["clip_offsets"], data["positions"]  # each NpzFile access decompresses
    index = [names.index(n) if n else -1 for n in BANDAI_TO_H36M]
    train, test = [], []
    for clip in range(len(offsets) - 1):
        pos = positions[offsets[clip]:offsets[clip + 1]:frame_step].astype(np.float32)
        pelvis = (pos[:, names.index("UpperLeg_L")] + pos[:, names.index("UpperLeg_R")]) / 2
        joints = np.stack([pelvis if i < 0 else pos[:, i] for i in index], axis=1) - pelvis[:, None]
        (test if clip % 5 == 0 else train).append(joints)
    train, test = np.concatenate(train), np.concatenate(test)
    scale = float(np.median(np.linalg.norm(train[:, THORAX], axis=-1)))

    def pack(x: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(x / scale)
        return torch.cat((x, torch.ones_like(x[..., :1])), dim=-1)

    return pack(train), pack(test), scale


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
    print(f"{setting['file']} -> H36M-17-like, root-relative / {scale * 1000:.0f} mm: {len(train)} training poses, "
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
    main()
