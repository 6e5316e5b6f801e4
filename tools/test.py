"""Evaluate a trained posezoo model and write a results JSON.

    python tools/test.py CONFIG_OR_NAME --checkpoint C [--out results.json] [--cfg-options k=v ...]

C is a weights file (``.safetensors``, or an official checkpoint of the model's family), a folder
written by posezoo.save (``work_dir/best``), or a training checkpoint (``iter_N.pth``/``best_*.pth``).
Pickles are read with ``torch.load(weights_only=True)``; mmengine's full training checkpoints hold
other objects too and need ``--trust-checkpoint`` (unpickling can run code from the file). A
checkpoint that does not fit the model is refused (mmengine would only warn and score random
weights). The results file holds every metric with its value, unit, protocol and dataset, and the
exact command. Errors print one line and exit 2 (``--debug``: the traceback).
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's posezoo first


def parse_args(argv=None) -> argparse.Namespace:
    from posezoo.engine.runner import DictAction

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", help="config file or recipe name")
    p.add_argument("--checkpoint", required=True, help="training checkpoint, weights file or posezoo.save folder")
    p.add_argument("--out", help="results JSON (default <work_dir>/results.json)")
    p.add_argument("--work-dir", help="where logs go (default work_dirs/<recipe>)")
    p.add_argument("--cfg-options", nargs="+", action=DictAction, default={}, help="override config keys, k=v")
    p.add_argument("--launcher", choices=["none", "pytorch"], default="none")
    p.add_argument("--trust-checkpoint", action="store_true",
                   help="unpickle a .pth fully (mmengine training checkpoints need it): only for files you trust")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    from mmengine.dist import is_main_process
    from mmengine.runner import Runner

    from posezoo.engine import compat
    from posezoo.engine.runner import load_config, prepare, results, write_json
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
    metrics = runner.test()
    command = shlex.join([Path(sys.executable).name, *sys.argv] if argv is None else ["tools/test.py", *argv])
    data = results(runner, metrics, str(checkpoint), command)
    if is_main_process():
        out = write_json(data, args.out or Path(cfg.work_dir) / "results.json")
        print(f"results written to {out}")
    return data


if __name__ == "__main__":
    from posezoo._runtime import reexec_with_tuned_allocator

    reexec_with_tuned_allocator()  # large activations without page faults: see posezoo/_runtime.py
    from posezoo.cli import run_script

    sys.exit(run_script("tools/test.py", main))
