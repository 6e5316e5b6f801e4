"""``posezoo test CONFIG_OR_NAME --checkpoint C``: evaluate a trained model, write a results JSON.

C is a weights file (``.safetensors``, or an official checkpoint of the model's family), a folder
written by posezoo.save (``work_dir/best``), or a training checkpoint (``iter_N.pth``/``best_*.pth``).
Pickles are read with ``torch.load(weights_only=True)``; mmengine's full training checkpoints hold
other objects too and need ``--trust-checkpoint`` (unpickling can run code from the file). A
checkpoint that does not fit the model is refused (mmengine would only warn and score random
weights). The results file holds every metric with its value, unit, protocol and dataset, and the
command, with paths relative to the current directory (:func:`posezoo.engine.runner.portable_path`).
"""
from __future__ import annotations

import argparse

NAME = "test"
HELP = "evaluate a trained model on a recipe's test data and write a results JSON"
TUNED_ALLOCATOR = True  # posezoo.cli re-executes with posezoo._runtime's allocator settings first


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mmengine.config import DictAction  # no torch import

    parser.add_argument("config", help="config file or recipe name")
    parser.add_argument("--checkpoint", required=True, help="training checkpoint, weights file or posezoo.save folder")
    parser.add_argument("--out", help="results JSON (default <work_dir>/results.json)")
    parser.add_argument("--work-dir", help="where logs go (default work_dirs/<recipe>)")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, default={}, help="override config keys, k=v")
    parser.add_argument("--launcher", choices=["none", "pytorch"], default="none")
    parser.add_argument("--trust-checkpoint", action="store_true",
                        help="unpickle a .pth fully (mmengine training checkpoints need it): only for files you trust")


def evaluate(args: argparse.Namespace, command: list[str]) -> dict:
    """Test ``args.checkpoint`` and write the results file (on rank 0); returns its content.
    ``command`` is the command line to record (program and arguments)."""
    from pathlib import Path

    from mmengine.dist import is_main_process
    from mmengine.runner import Runner

    from posezoo.engine import compat
    from posezoo.engine.runner import load_config, portable_command, prepare, results, write_json
    from posezoo.errors import InputNotFoundError

    checkpoint = Path(args.checkpoint)
    if not checkpoint.exists():
        raise InputNotFoundError(f"--checkpoint {checkpoint} does not exist")
    cfg = prepare(load_config(args.config, args.cfg_options), args.work_dir, args.launcher)
    if checkpoint.suffix == ".pth":
        compat.trust_only(checkpoint if args.trust_checkpoint else None)  # not the work_dir prepare() trusted
        state = compat.load_from_local(str(checkpoint), map_location="cpu")  # refused here when unsafe
        cfg.load_from = str(checkpoint)
    else:  # weights only: loaded into the posezoo model by posezoo.factory.load_checkpoint
        cfg.model.init_checkpoint = str(checkpoint / "model.safetensors" if checkpoint.is_dir() else checkpoint)
    for key in ("train_dataloader", "train_cfg", "optim_wrapper", "param_scheduler"):  # test only
        cfg.pop(key, None)
    runner = Runner.from_cfg(cfg)
    if checkpoint.suffix == ".pth":
        compat.check_fits(runner.model, state, str(checkpoint))
    data = results(runner, runner.test(), checkpoint, portable_command(command))
    if is_main_process():
        out = write_json(data, args.out or Path(cfg.work_dir) / "results.json")
        print(f"results written to {out}")
    return data


def run(args: argparse.Namespace) -> int:
    evaluate(args, ["posezoo", *args.argv])
    return 0
