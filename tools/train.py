"""Train a posezoo model with mmengine's Runner.

    python tools/train.py CONFIG_OR_NAME [--work-dir D] [--resume] [--cfg-options k=v ...]
    torchrun --nproc_per_node=2 tools/train.py CONFIG_OR_NAME --launcher pytorch   # CPU: gloo

CONFIG_OR_NAME is an mmengine config file or the name of a recipe in registry/recipes/. Checkpoints
go to the work_dir (``iter_N.pth`` for resuming, ``iter_N.safetensors``, and the ``last/`` and
``best/`` folders in posezoo.save format).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's posezoo first


def parse_args(argv=None) -> argparse.Namespace:
    from posezoo.engine.runner import DictAction

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", help="config file or recipe name")
    p.add_argument("--work-dir", help="where logs and checkpoints go (default work_dirs/<recipe>)")
    p.add_argument("--resume", action="store_true", help="continue from the newest complete checkpoint in the work_dir")
    p.add_argument("--cfg-options", nargs="+", action=DictAction, default={}, help="override config keys, k=v")
    p.add_argument("--launcher", choices=["none", "pytorch"], default="none", help="pytorch: under torchrun")
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
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


if __name__ == "__main__":
    from posezoo._runtime import reexec_with_tuned_allocator

    reexec_with_tuned_allocator()  # large activations without page faults: see posezoo/_runtime.py
    from posezoo.cli import run_script

    sys.exit(run_script("tools/train.py", main))
