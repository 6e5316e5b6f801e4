"""``posezoo train CONFIG_OR_NAME``: train with mmengine's Runner, from a shipped recipe or a config.

    posezoo train tcn-27f-lift-small --cfg-options train_cfg.max_iters=100
    torchrun --nproc_per_node=2 -m posezoo.cli train NAME --launcher pytorch   # CPU: gloo

Checkpoints go to the work_dir (default ``work_dirs/<recipe>`` below the current directory):
``iter_N.pth`` for resuming, ``iter_N.safetensors``, and ``last/`` and ``best/`` in posezoo.save format.
"""
from __future__ import annotations

import argparse

NAME = "train"
HELP = "train a model from a shipped recipe (registry/recipes) or an mmengine config file"
TUNED_ALLOCATOR = True  # posezoo.cli re-executes with posezoo._runtime's allocator settings first


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mmengine.config import DictAction  # no torch import

    parser.add_argument("config", help="config file or recipe name")
    parser.add_argument("--work-dir", help="where logs and checkpoints go (default work_dirs/<recipe>)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the newest complete checkpoint in the work_dir")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, default={}, help="override config keys, k=v")
    parser.add_argument("--launcher", choices=["none", "pytorch"], default="none", help="pytorch: under torchrun")


def run(args: argparse.Namespace) -> int:
    import sys

    from mmengine.runner import Runner

    from posezoo.engine.runner import load_config, prepare, resume_checkpoint

    cfg = prepare(load_config(args.config, args.cfg_options), args.work_dir, args.launcher)
    if args.resume:
        checkpoint = resume_checkpoint(cfg.work_dir)
        if checkpoint is None:
            print(f"--resume: no complete checkpoint in {cfg.work_dir}; starting from scratch", file=sys.stderr)
        else:
            cfg.resume, cfg.load_from = True, checkpoint
    Runner.from_cfg(cfg).train()
    return 0
