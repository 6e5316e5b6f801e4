"""What ``tools/train.py`` and ``tools/test.py`` share: recipes by name, checks before the Runner
starts, choosing the checkpoint to resume from, and the results file."""
from __future__ import annotations

import itertools
import json
import os
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch
from mmengine.config import Config, DictAction

from posezoo.engine import compat

__all__ = ["DictAction", "load_config", "recipe_names", "check_paths", "prepare", "resume_checkpoint",
           "results", "write_json"]


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
        cfg.merge_from_dict(cfg_options)
    cfg.setdefault("recipe", path.stem)
    return cfg


# Dataset arguments that name files; the licensed body-model files get their own hint.
PATH_KEYS = ("files", "file", "data_3d", "data_2d", "cameras_file", "body_model", "j_regressor")
BODY_MODEL_KEYS = ("body_model", "j_regressor")


def _dataset_paths(dataset: Any) -> list[tuple[str, str]]:
    """(argument, path) pairs of a dataset config, wrappers (``dataset``/``datasets``) included."""
    if not isinstance(dataset, dict):
        return []
    out = []
    for key in PATH_KEYS:
        value = dataset.get(key)
        for item in ([value] if isinstance(value, (str, os.PathLike)) else value or []):
            if isinstance(item, (str, os.PathLike)):
                out.append((key, str(item)))
    for inner in [dataset.get("dataset")] + list(dataset.get("datasets") or []):
        out += _dataset_paths(inner)
    return out


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
    complete ``iter_N.pth``. Leftover temp files of an interrupted write are removed."""
    work_dir = Path(work_dir)
    for tmp in work_dir.glob(".*.tmp"):
        tmp.unlink(missing_ok=True)
    pointer = work_dir / "last_checkpoint"
    if pointer.is_file():
        last = Path(pointer.read_text().strip())
        if last.is_file() and _readable(last):
            return str(last)
    candidates = sorted(work_dir.glob("iter_*.pth"), key=lambda p: int(re.findall(r"\d+", p.stem)[-1]), reverse=True)
    return next((str(p) for p in candidates if _readable(p)), None)


def results(runner, metrics: dict[str, float], checkpoint: str, command: str) -> dict:
    """The results file: model, checkpoint, dataset, each metric with unit/protocol/dataset, command."""
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
        "checkpoint": str(checkpoint),
        "dataset": "; ".join(datasets),
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
