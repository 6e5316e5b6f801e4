"""Learning efficiency of lifting recipes: held-out error vs training time on this machine, next to
the ridge-regression floor fitted on the same data.

    python tools/lift_curve.py tcn-s-81f-lift-mocap mlp-lift-mocap --iters 600 --out docs/results/curves
    python tools/lift_curve.py tcn-s-81f-lift-mocap mlp-lift-mocap --setting bandai-to-cmu --iters 600 ...
    POSEZOO_H36M=h36m POSEZOO_H36M_2D=gt python tools/lift_curve.py tcn-27f-lift-h36m mlp-lift-h36m --setting h36m

Settings (``--data``, default ``$POSEZOO_DATA``, holds the shared mocap files; every recipe reads them there):
- ``heldout``: each recipe's own data, scored on its held-out clips;
- ``bandai-to-cmu``: trained on Bandai-Namco 1 + 2 only, scored on CMU's test clips: another marker
  skeleton and other people, the gap real benchmarks add;
- ``h36m``: the Human3.6M recipes (tcn-27f-lift-h36m, dstformer-lift-h36m-small, mlp-lift-h36m) on the
  files under ``POSEZOO_H36M`` (real Human3.6M, or the stand-in posezoo.data.h36m_files writes).
Each recipe trains with ``tools/train.py`` as shipped, or for ``--iters`` iterations (its schedule
rescaled), scored ``--points`` times; its work_dir's ``curve.csv``
(posezoo.engine.curve.LearningCurveHook) gives error vs training seconds. The ridge floor
(posezoo.evaluation.baselines.RidgeLifter, single frame) is fitted on ``--ridge-windows`` training
windows of the first recipe's dataset. Writes ``<out>/curves.csv`` and ``<out>/curves.png``.
"""
from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's posezoo first

ROOT = Path(__file__).resolve().parents[1]
# Per setting: the --cfg-options every recipe trains under, and the dataset arguments that make the
# first recipe's dataset give single frames for the ridge floor.
MOCAP_FRAME = {"frames": 1, "target": "centre"}
SETTINGS = {
    "heldout": {"options": {}, "single_frame": MOCAP_FRAME},
    "bandai-to-cmu": {"options": {
        "train_dataloader.dataset.files": ["{data}/bandai1.npz", "{data}/bandai2.npz"],
        "train_dataloader.dataset.file_weights": [0.4, 0.6],
        "val_dataloader.dataset.files": ["{data}/cmu.npz"],
        "val_dataloader.dataset.file_weights": None,
        "test_dataloader.dataset.files": ["{data}/cmu.npz"],
        "test_dataloader.dataset.file_weights": None,
    }, "single_frame": MOCAP_FRAME},
    "h36m": {"options": {}, "single_frame": {"clip_len": 1}},
}


def setting_options(setting: str, data: str) -> dict:
    """--cfg-options of a setting, with the data folder filled in."""
    return {k: [f.format(data=data) for f in v] if isinstance(v, list) and isinstance(v[0], str) else v
            for k, v in SETTINGS[setting]["options"].items()}


def _option_args(options: dict) -> list[str]:
    out = []
    for key, value in options.items():
        text = "[" + ",".join(map(str, value)) + "]" if isinstance(value, list) else str(value)
        out.append(f"{key}={text}")
    return out


def curve_options(recipe: str, iters: int | None, points: int, options: dict) -> dict:
    """The --cfg-options of a curve run: ``iters`` iterations (None: the recipe's own), validated
    ``points`` times."""
    from posezoo.engine.runner import load_config

    iters = iters or load_config(recipe, options).train_cfg.max_iters
    return {**options, "train_cfg.max_iters": iters, "train_cfg.val_interval": max(1, iters // points)}


def train_curve(recipe: str, work_dir: Path, iters: int | None, points: int, options: dict) -> list[dict]:
    """Train ``recipe`` in a subprocess (see :func:`curve_options`) and return its curve.csv rows."""
    opts = curve_options(recipe, iters, points, options)
    cmd = [sys.executable, str(ROOT / "tools" / "train.py"), recipe, "--work-dir", str(work_dir),
           "--cfg-options", *_option_args(opts)]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    with open(work_dir / "curve.csv", newline="") as f:
        return list(csv.DictReader(f))


def ridge_floor(recipe: str, options: dict, single_frame: dict, windows: int) -> dict:
    """Fit the single-frame ridge floor on ``windows`` training windows spread evenly over the
    recipe's dataset (made single-frame by the ``single_frame`` dataset arguments) and score it on
    its validation windows: MPJPE and P-MPJPE (mm)."""
    import numpy as np

    from posezoo.engine.runner import load_config
    from posezoo.evaluation import functional as F
    from posezoo.evaluation.baselines import RidgeLifter
    from posezoo.registry import DATASETS

    cfg = load_config(recipe, options)

    def frames_of(section: str, count: int | None) -> tuple:
        data = DATASETS.build(dict(cfg[section].dataset, **single_frame))
        indices = np.linspace(0, len(data) - 1, min(count or len(data), len(data))).astype(int).tolist()
        get = getattr(data, "__getitems__", None) or (lambda chunk: [data[i] for i in chunk])
        items = [item for i in range(0, len(indices), 1024) for item in get(indices[i:i + 1024])]
        return (np.stack([it["inputs"][0].numpy() for it in items]),
                np.stack([it["target"][0].numpy() for it in items]))

    ridge = RidgeLifter(alpha=1.0).fit(*frames_of("train_dataloader", windows))
    inputs, target = frames_of("val_dataloader", None)
    pred = ridge.predict(inputs)
    pred = pred - pred[:, :1]
    return {"mpjpe": 1000 * float(F.mpjpe(pred, target).mean()), "p_mpjpe": 1000 * float(F.p_mpjpe(pred, target).mean())}


def plot(rows: list[dict], floor: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for recipe in dict.fromkeys(r["recipe"] for r in rows):
        pts = [r for r in rows if r["recipe"] == recipe]
        ax.plot([float(p["wall_s"]) / 60 for p in pts], [float(p["pose/mpjpe"]) for p in pts], "o-", label=recipe)
    ax.axhline(floor["mpjpe"], color="grey", ls="--", label=f"ridge floor ({floor['mpjpe']:.0f} mm)")
    ax.set_xlabel("training time on this machine (minutes, validation excluded)")
    ax.set_ylabel("held-out MPJPE (mm)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("recipes", nargs="+")
    p.add_argument("--setting", choices=sorted(SETTINGS), default="heldout")
    p.add_argument("--iters", type=int, help="iterations of every recipe (default: each recipe's own)")
    p.add_argument("--points", type=int, default=6)
    p.add_argument("--ridge-windows", type=int, default=20480)
    p.add_argument("--out", type=Path, default=Path("work_dirs/lift_curve"))
    p.add_argument("--data", default=os.environ.get("POSEZOO_DATA", "data"), help="folder of the mocap files")
    args = p.parse_args(argv)
    os.environ["POSEZOO_DATA"] = str(args.data)  # the recipes' own files too (they read POSEZOO_DATA)
    options = setting_options(args.setting, args.data)
    out = args.out / args.setting
    out.mkdir(parents=True, exist_ok=True)
    floor = ridge_floor(args.recipes[0], options, SETTINGS[args.setting]["single_frame"], args.ridge_windows)
    print(f"ridge floor: {floor['mpjpe']:.1f} mm MPJPE, {floor['p_mpjpe']:.1f} mm P-MPJPE", flush=True)
    rows = []
    for recipe in args.recipes:
        for row in train_curve(recipe, out / recipe, args.iters, args.points, options):
            rows.append({"setting": args.setting, "recipe": recipe, **row})
    rows.append({"setting": args.setting, "recipe": "ridge (floor)", "iter": 0, "wall_s": 0,
                 "pose/mpjpe": round(floor["mpjpe"], 3), "pose/p_mpjpe": round(floor["p_mpjpe"], 3)})
    fields = list(dict.fromkeys(k for r in rows for k in r))
    with open(out / "curves.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    plot([r for r in rows if r["recipe"] != "ridge (floor)"], floor, out / "curves.png",
         f"lifting recipes, {args.setting}: error vs training time")
    print(f"wrote {out / 'curves.csv'} and {out / 'curves.png'}")


if __name__ == "__main__":
    from posezoo.cli import run_script

    sys.exit(run_script("tools/lift_curve.py", main))
