"""What ``posezoo train`` and ``posezoo test`` (and their ``tools/`` wrappers) share: recipes by
name, checks before the Runner starts, choosing the checkpoint to resume from, and the results file."""
from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch
from mmengine.config import Config, DictAction

from posezoo.engine import compat

__all__ = ["DictAction", "load_config", "recipe_names", "check_paths", "prepare", "resume_checkpoint",
           "portable_path", "portable_command", "results", "write_json"]


def recipe_dir() -> Path:
    """``registry/recipes`` of a source checkout, or the installed ``posezoo._entries/recipes``."""
    from posezoo.entries import entry_dirs

    return entry_dirs()[0] / "recipes"


def recipe_names() -> list[str]:
    """Names of the shipped training recipes (``tools/train.py NAME``); ``_*`` files are bases."""
    return sorted(p.stem for p in recipe_dir().glob("*.py") if not p.name.startswith("_"))


def load_config(config_or_name: str, cfg_options: dict | None = None) -> Config:
    """A config file path, or the name of a shipped recipe (a registry entry name, for instance)."""
    path = Path(config_or_name)
    if not path.is_file():
        path = recipe_dir() / f"{config_or_name}.py"
        if not path.is_file():
            import difflib

            close = difflib.get_close_matches(config_or_name, recipe_names(), n=4, cutoff=0.4)
            raise FileNotFoundError(f"{config_or_name!r} is neither a config file nor a recipe name; "
                                    f"recipes: {', '.join(recipe_names())}"
                                    + (f". Did you mean: {', '.join(close)}?" if close else ""))
    cfg = Config.fromfile(str(path))
    if cfg_options:
        planned = (cfg.get("train_cfg") or {}).get("max_iters")
        data = _data_paths(cfg)
        cfg.merge_from_dict(cfg_options)
        if "max_iters" in cfg_options and "train_cfg.max_iters" not in cfg_options and cfg.get("train_cfg"):
            cfg.train_cfg.max_iters = cfg_options["max_iters"]
        rescale_schedule(cfg, planned, given=cfg_options)
        _relabel_overridden_data(cfg, data, given=cfg_options)
    cfg.setdefault("recipe", path.stem)
    return cfg


# Iteration counts that belong to the schedule, besides the param_scheduler's begin / end / T_max.
SCHEDULE_KEYS = ("train_cfg.val_interval", "train_cfg.val_begin", "default_hooks.checkpoint.interval",
                 "model.stage1_iters")


def _given(key: str, given) -> bool:
    """Whether ``key`` (or a part of it) was set by the user's overrides."""
    return any(k == key or k.startswith(f"{key}.") for k in given)


def rescale_schedule(cfg: Config, planned: int | None, given=()) -> None:
    """Stretch the schedule to ``cfg.train_cfg.max_iters`` when it differs from the ``planned`` one.

    Every iteration count of the schedule is multiplied by ``max_iters / planned`` (rounded, at
    least 1): the iteration-based param_schedulers' ``begin``, ``end`` and ``T_max`` (an ``end`` at
    the planned length ends at the new one; a ``T_max`` of ``end - begin`` stays so), and
    :data:`SCHEDULE_KEYS` (validation and checkpoint intervals, the tokenizer's stage switch). Keys
    named in ``given`` (the user's overrides) are kept as given. ``cfg.max_iters`` records the new length.
    """
    new = (cfg.get("train_cfg") or {}).get("max_iters")
    if not planned or not new or new == planned:
        return
    factor = new / planned

    def scaled(value: int) -> int:
        return max(1, round(value * factor))

    for key in SCHEDULE_KEYS:
        *parents, leaf = key.split(".")
        node = cfg
        for part in parents:
            node = node.get(part) if hasattr(node, "get") else None
        if isinstance(node, dict) and isinstance(node.get(leaf), int) and not _given(key, given):
            node[leaf] = scaled(node[leaf])
    schedulers = cfg.get("param_scheduler")
    if schedulers and not _given("param_scheduler", given):
        for sched in [schedulers] if isinstance(schedulers, dict) else schedulers:
            if sched.get("by_epoch", True):
                continue
            begin, end = sched.get("begin", 0), sched.get("end")
            new_begin = round(begin * factor)
            new_end = end if not isinstance(end, int) or end > planned else new if end == planned else scaled(end)
            if "T_max" in sched:
                whole = sched["T_max"] == (end or 0) - begin
                sched["T_max"] = new_end - new_begin if whole else scaled(sched["T_max"])
            if "begin" in sched:
                sched["begin"] = new_begin
            if "end" in sched:
                sched["end"] = new_end
    cfg.max_iters = new


# Dataset arguments that name files; the licensed body-model files get their own hint.
PATH_KEYS = ("files", "file", "data_3d", "data_2d", "cameras", "body_model", "j_regressor")
BODY_MODEL_KEYS = ("body_model", "j_regressor")


def _dataset_paths(dataset: Any) -> list[tuple[str, str]]:
    """(argument, path) pairs of a dataset config, wrappers (``dataset``/``datasets``) included."""
    if not isinstance(dataset, dict):
        return []
    out = []
    for key in PATH_KEYS:
        value = dataset.get(key)
        values = [value] if isinstance(value, (str, os.PathLike)) else value  # paths, or e.g. a camera dict
        if isinstance(values, (list, tuple)):
            out += [(key, str(v)) for v in values if isinstance(v, (str, os.PathLike))]
    for inner in [dataset.get("dataset")] + list(dataset.get("datasets") or []):
        out += _dataset_paths(inner)
    return out


def _data_paths(cfg: Config) -> dict[str, list[tuple[str, str]]]:
    """(argument, path) pairs of the val and test dataloaders' datasets."""
    return {split: _dataset_paths((cfg.get(f"{split}_dataloader") or {}).get("dataset")) for split in ("val", "test")}


def data_label(dataset: dict) -> str:
    """A dataset label derived from a dataset config's files: ``"a.npz, b.npz (split test)"``."""
    names = ", ".join(Path(p).name for _, p in _dataset_paths(dataset))
    split = dataset.get("split") if isinstance(dataset, dict) else None
    return f"{names} ({dataset.get('type', 'dataset')}{f', split {split}' if split else ''})"


def _relabel_overridden_data(cfg: Config, recipe_paths: dict, given=()) -> None:
    """Where the overrides changed a val/test dataloader's files, its evaluator's free-text
    ``dataset`` label (written for the recipe's files) becomes :func:`data_label` of the new files,
    marked as overridden; a label given in the overrides stays."""
    for split, before in recipe_paths.items():
        dataset = (cfg.get(f"{split}_dataloader") or {}).get("dataset")
        if _dataset_paths(dataset) == before or _given(f"{split}_evaluator", given):
            continue
        evaluators = cfg.get(f"{split}_evaluator")
        for metric in [evaluators] if isinstance(evaluators, dict) else evaluators or []:
            if "dataset" in metric:
                metric["dataset"] = f"{data_label(dataset)}; data files overridden, not the recipe's"


def check_paths(cfg: Config) -> None:
    """Every data file named by the dataloaders must exist and be of the expected container format."""
    for split in ("train", "val", "test"):
        loader = cfg.get(f"{split}_dataloader")
        if not loader:
            continue
        for key, value in _dataset_paths(loader.get("dataset")):
            path = Path(value).expanduser()
            where = f"{split}_dataloader.dataset.{key}"
            if not path.exists():
                hint = ("SMPL files are licensed and not shipped: set POSEZOO_SMPL to the folder holding yours"
                        if key in BODY_MODEL_KEYS else "set the recipe's data root, e.g. POSEZOO_DATA=/path/to/data")
                raise FileNotFoundError(f"{where}: {path} does not exist ({hint}, or --cfg-options)")
            if path.suffix == ".npz" and not zipfile.is_zipfile(path):
                raise ValueError(f"{where}: {path} is not a numpy .npz archive (wrong format or truncated)")


_RUNS_IN_PROCESS = itertools.count()


def prepare(cfg: Config, work_dir: str | None, launcher: str) -> Config:
    """Settle work_dir and launcher, check the data files, trust the work_dir for resuming, and apply
    the CPU-distributed fix.

    Each run of a process gets its own experiment name (``<recipe>-run<N>``): mmengine names its
    logger, visualizer and scope instances ``<experiment>_<timestamp to the second>`` and hands back
    an existing instance of that name, so a second run of the same recipe within a second (tests,
    notebooks) would log into the first run's files."""
    cfg.work_dir = work_dir or cfg.get("work_dir") or str(Path("work_dirs") / cfg.recipe)
    run = next(_RUNS_IN_PROCESS)
    if not cfg.get("experiment_name"):  # never mmengine's own default (the config's file name)
        cfg.experiment_name = f"{cfg.recipe}-run{run}"
    cfg.launcher = launcher
    check_paths(cfg)
    compat.trust_directory(cfg.work_dir)
    compat.setup_distributed(cfg)
    return cfg


def _readable(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as z:  # torch.save files are zip archives; a torn one fails here
            return z.testzip() is None
    except (OSError, zipfile.BadZipFile):
        return False


def resume_checkpoint(work_dir: str | os.PathLike) -> str | None:
    """The checkpoint to resume from: ``last_checkpoint``'s target if it is complete, else the newest
    complete ``iter_N.pth``. Leftover temp files of an interrupted write are removed: ``.<name>.<random>.tmp``
    and ``.<name>.<random>.tmp<suffix>`` (a kept suffix; earlier posezoo wrote checkpoints so)."""
    work_dir = Path(work_dir)
    for tmp in work_dir.glob(".*.tmp*"):
        tmp.unlink(missing_ok=True)
    pointer = work_dir / "last_checkpoint"
    if pointer.is_file():
        last = Path(pointer.read_text().strip())
        if last.is_file() and _readable(last):
            return str(last)
    candidates = sorted(work_dir.glob("iter_*.pth"), key=lambda p: int(re.findall(r"\d+", p.stem)[-1]), reverse=True)
    return next((str(p) for p in candidates if _readable(p)), None)


def portable_path(path: str | os.PathLike) -> str:
    """``path`` as a results file records it: relative to the current directory when below it, else
    its file name alone (no machine's absolute paths in files that get published)."""
    path = Path(path)
    if not path.is_absolute():
        return path.as_posix()
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.name


def portable_command(argv: list[str]) -> str:
    """A command line as a results file records it: absolute paths (alone or after ``key=``) made
    portable with :func:`portable_path`."""
    def token(arg: str) -> str:
        key, sep, value = arg.rpartition("=")
        return f"{key}{sep}{portable_path(value)}" if os.path.isabs(value) else arg

    return shlex.join(token(a) for a in argv)


def results(runner, metrics: dict[str, float], checkpoint: str | os.PathLike, command: str) -> dict:
    """The results file: model, checkpoint, dataset, each metric with unit/protocol/dataset, command
    (paths as :func:`portable_path` writes them)."""
    from posezoo import __version__
    from posezoo.engine.hooks import task_of

    described: dict[str, dict] = {}
    for metric in runner.test_evaluator.metrics:
        if hasattr(metric, "describe"):
            described.update(metric.describe())
    pose_model = task_of(runner).model
    datasets = sorted({d["dataset"] for d in described.values() if d.get("dataset")})
    return {
        "model": pose_model.meta.get("name") or runner.cfg.recipe,
        "recipe": runner.cfg.recipe,
        "checkpoint": portable_path(checkpoint),
        "dataset": "; ".join(datasets),
        "data": dict(getattr(runner.test_loop.dataloader.dataset, "metainfo", None) or {}).get("sources", []),
        "metrics": {key: {"value": float(value), **described.get(key, {"unit": "", "protocol": "", "dataset": ""})}
                    for key, value in metrics.items()},
        "command": command,
        "posezoo_version": __version__,
        "torch_version": torch.__version__,
    }


def write_json(data: dict, path: str | os.PathLike) -> Path:
    """Write ``data`` as indented JSON atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)
    return path
