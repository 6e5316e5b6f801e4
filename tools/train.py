"""Train a posezoo model with mmengine's Runner: ``posezoo train`` run from a checkout.

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


def main(argv: list[str] | None = None) -> int:
    from posezoo.commands import train

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_arguments(parser)
    return train.run(parser.parse_args(argv))


if __name__ == "__main__":
    from posezoo._runtime import reexec_with_tuned_allocator

    reexec_with_tuned_allocator()  # large activations without page faults: see posezoo/_runtime.py
    from posezoo.cli import run_script

    sys.exit(run_script("tools/train.py", main))
