"""``posezoo train``, ``posezoo test`` and ``posezoo benchmark`` from a plain (non-editable) wheel in a fresh venv, run outside
the checkout: recipes resolve from the installed ``posezoo._entries``, work_dirs land below the cwd.

The venv sees this environment's site-packages (torch, mmengine, ...) through a ``.pth`` line; such a
directory is not itself scanned for ``.pth`` files, so the editable posezoo of this environment stays
invisible (asserted below)."""
from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RECIPE = "tcn-27f-lift-small"  # the smallest lift recipe; trained here on synthetic clips


def run(cmd: list, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={"PATH": f"{Path(cmd[0]).parent}:/usr/bin:/bin", "HOME": str(cwd)})
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return proc


def write_clips(path: Path) -> None:
    """Eight short H36M-17 clips (``train_*`` / ``test_*`` names pick the split): a rest pose swaying."""
    from posezoo.data.layouts import get_layout

    layout = get_layout("h36m-17")
    rng = np.random.default_rng(0)
    rest = np.cumsum(rng.normal(0, 0.15, (17, 3)), axis=0) * 0.5 + [0, 0, 1.0]
    names = [f"train_{i}" for i in range(6)] + ["test_0", "test_1"]
    t = np.arange(60)[:, None, None] / 30
    clips = [rest + 0.1 * np.sin(2 * np.pi * (0.5 + i / 8) * t + rng.normal(size=(17, 3))) for i in range(len(names))]
    np.savez(path, positions=np.concatenate(clips).astype(np.float32), clip_offsets=np.arange(len(names) + 1) * 60,
             clip_names=np.array(names), joint_names=np.array(layout.joints), fps=np.full(len(names), 30.0))


def test_train_and_test_from_an_installed_wheel(tmp_path):
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                 "-w", tmp_path / "dist", ROOT], cwd=tmp_path)
    wheel = next((tmp_path / "dist").glob("posezoo-*.whl"))
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp_path)
    python = venv / "bin" / "python"
    site = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path).stdout.strip())
    (site / "parent_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "-q", wheel], cwd=tmp_path)

    work = tmp_path / "elsewhere"
    work.mkdir()
    probe = run([python, "-c", "import posezoo, sys; from posezoo.engine.runner import recipe_dir; "
                 "print(posezoo.__file__); print(recipe_dir()); "
                 "print(any('__editable__' in m for m in sys.modules))"], work).stdout.split()
    assert Path(probe[0]).is_relative_to(site) and Path(probe[1]) == site / "posezoo/_entries/recipes", probe
    assert probe[2] == "False", "the editable posezoo of the parent environment was loaded"

    write_clips(work / "clips.npz")
    files = "[clips.npz]"
    data = [f"{split}_dataloader.dataset.files={files}" for split in ("train", "val", "test")]
    small = ["model.model.channels=16", "train_dataloader.batch_size=4", *data]
    posezoo = venv / "bin" / "posezoo"
    run([posezoo, "train", RECIPE, "--cfg-options", "train_cfg.max_iters=2", *small], work)
    out = work / "work_dirs" / RECIPE
    assert (out / "last" / "model.safetensors").is_file() and (out / "iter_2.pth").is_file()
    run([posezoo, "test", RECIPE, "--checkpoint", out / "last", "--cfg-options", *small], work)
    results = json.loads((out / "results.json").read_text())
    assert results["metrics"]["pose/mpjpe"]["value"] > 0
    assert results["checkpoint"] == f"work_dirs/{RECIPE}/last"  # relative to the cwd, not this machine's path
    assert str(tmp_path) not in (out / "results.json").read_text()

    run([posezoo, "benchmark", "mlp-lift", "--batch", "2", "--frames", "1", "--repeats", "1", "--warmup", "0",
         "--no-memory", "--csv", "bench.csv"], work)
    rows = [r for r in (work / "bench.csv").read_text().splitlines() if not r.startswith("#")]
    assert len(rows) == 2 and rows[1].startswith("mlp-lift,posezoo,infer,"), rows


def test_published_files_carry_no_machine_paths(tmp_path, monkeypatch):
    """docs/ and what posezoo test writes name files relative to the cwd, never this machine's paths."""
    from posezoo.engine.runner import portable_command, portable_path

    for path in [ROOT / "docs" / "training.md", *(ROOT / "docs" / "results").glob("*.json")]:
        text = path.read_text()
        assert "/work/" not in text and "/tmp/" not in text, path
    monkeypatch.chdir(tmp_path)
    assert portable_path(tmp_path / "work_dirs" / "best") == "work_dirs/best"
    assert portable_path("/elsewhere/ckpt.safetensors") == "ckpt.safetensors"
    assert portable_command(["posezoo", "test", "r", "--checkpoint", str(tmp_path / "w" / "best"),
                             f"test_dataloader.dataset.files={tmp_path}/a.npz"]) == \
        "posezoo test r --checkpoint w/best test_dataloader.dataset.files=a.npz"
