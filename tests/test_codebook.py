"""Codebook collapse on real motion capture (Bandai-Namco 1, CC BY-NC 4.0): posezoo's default recipe
(staged training + dead-code restart) keeps the codebook in use and reconstructs held-out clips;
official PCT's plain end-to-end training collapses onto a few codes. Setting: tools/codebook_study.py
--small (32 codes, 8 tokens, 400 quantised or unquantised steps per recipe)."""
from __future__ import annotations

import pytest
import torch

from tools.codebook_study import SETTINGS, bandai_h36m_poses, run


@pytest.mark.slow
def test_default_recipe_uses_the_codebook_and_end_to_end_collapses(data_dir):
    setting = SETTINGS["small"]
    path = data_dir / setting["file"]
    if not path.is_file():
        pytest.skip(f"{path} not found")
    train, test, scale = bandai_h36m_poses(path, setting["frame_step"])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: more threads only contend
    try:
        results = dict(run(setting, train, test, scale))
    finally:
        torch.set_num_threads(threads)
    default, plain = results["default (staged + restart)"]["held-out"], results["end-to-end (official)"]["held-out"]
    mean_pose_mm = float((test[..., :3] - train[..., :3].mean(0)).norm(dim=-1).mean()) * scale * 1000
    assert default["fraction_used"] >= 0.9, default
    assert default["perplexity"] >= 0.5 * setting["tokenizer"]["codebook"]["token_class_num"], default
    assert plain["fraction_used"] <= 0.5 * default["fraction_used"], plain
    assert plain["perplexity"] <= 0.25 * default["perplexity"], plain
    # held-out clips are reconstructed: clearly below the error of predicting the mean pose (measured
    # 95.9 vs 115.6 mm), and better than the collapsed tokenizer
    assert default["mpjpe_mm"] < 0.9 * mean_pose_mm, (default, mean_pose_mm)
    assert default["mpjpe_mm"] < plain["mpjpe_mm"], (default, plain)
