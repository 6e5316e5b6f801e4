"""tools/train.py and tools/test.py as a user runs them: two CPU processes under torchrun (gloo),
resuming on one process, a run SIGKILLed at a random iteration and resumed, and the results file.
Each test starts real training processes on the shared mocap data (bandai1.npz)."""
from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def write_config(folder: Path, data: Path, max_iters: int, interval: int) -> Path:
    """A config file inheriting the shipped DSTformer lift recipe, shrunk to seconds of CPU."""
    files = [str(data / "bandai1.npz")]
    text = f'''
_base_ = ["{ROOT / "registry" / "recipes" / "dstformer-lift.py"}"]
files = {files!r}
model = dict(model=dict(name="dstformer-lite-lift", depth=1, dim_feat=16, dim_rep=16, num_heads=2, mlp_ratio=2,
                        maxlen=9), flip_test=False)
train_dataloader = dict(batch_size=4, dataset=dict(files=files, clip_len=9, stride=9))
val_dataloader = dict(batch_size=32, dataset=dict(files=files, clip_len=9, stride=400))
test_dataloader = val_dataloader
train_cfg = dict(max_iters={max_iters}, val_interval={max_iters})
optim_wrapper = dict(optimizer=dict(lr=2e-3))
param_scheduler = [dict(type="ConstantLR", factor=1.0, by_epoch=False, begin=0, end={max_iters})]
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval={interval}, max_keep_ckpts=3))
'''
    path = folder / "tiny_lift.py"
    path.write_text(text)
    return path


def env() -> dict:
    return dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")


def losses(work_dir: Path) -> dict[int, float]:
    """iteration -> loss from every run's vis_data/scalars.json in the work_dir (later runs win)."""
    out = {}
    for path in sorted(work_dir.glob("*/vis_data/scalars.json")):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            if "loss" in row and "iter" in row:
                out[int(row["iter"])] = float(row["loss"])
    return out


def run(args: list[str], timeout: float = 240) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, cwd=ROOT, env=env(), capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_torchrun_two_processes_then_resume_on_one(tmp_path, data_dir):
    config, work = write_config(tmp_path, data_dir, max_iters=8, interval=4), tmp_path / "work"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
                f"--master_port={free_port()}"]
    proc = run(torchrun + ["tools/train.py", str(config), "--work-dir", str(work), "--launcher", "pytorch"])
    log = proc.stdout + proc.stderr
    assert "Distributed launcher: pytorch" in log and "Distributed training: True" in log
    assert re.search(r"world_size:\s*2|GPU number: 2", log), "both ranks joined the gloo group"
    curve = losses(work)
    assert sorted(curve) == list(range(1, 9))
    assert sum(curve[i] for i in (6, 7, 8)) < sum(curve[i] for i in (1, 2, 3)), curve
    assert (work / "iter_8.pth").is_file() and (work / "last" / "model.safetensors").is_file()

    # one process continues the two-process run from its last checkpoint
    proc = run([sys.executable, "tools/train.py", str(config), "--work-dir", str(work), "--resume",
                "--cfg-options", "train_cfg.max_iters=10", "train_cfg.val_interval=10"])
    assert "resumed epoch: 0, iter: 8" in proc.stdout + proc.stderr
    curve = losses(work)
    assert sorted(curve) == list(range(1, 11))  # 9 and 10 added, nothing repeated
    assert (work / "iter_10.pth").is_file()


def test_sigkill_then_resume(tmp_path, data_dir):
    config, work = write_config(tmp_path, data_dir, max_iters=60, interval=2), tmp_path / "work"
    kill_after = random.Random().randint(5, 14)
    proc = subprocess.Popen([sys.executable, "tools/train.py", str(config), "--work-dir", str(work)],
                            cwd=ROOT, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    try:
        while time.time() < deadline and max(losses(work) or [0]) < kill_after:
            assert proc.poll() is None, "training ended before it was killed"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    before = losses(work)
    assert max(before) >= kill_after
    # every checkpoint file that exists is complete
    for pth in work.glob("*.pth"):
        torch.load(pth, map_location="cpu", weights_only=False)
    from safetensors.torch import load_file

    for st in work.glob("**/*.safetensors"):
        load_file(st)
    saved = sorted(int(p.stem.split("_")[1]) for p in work.glob("iter_*.pth"))
    assert saved, "at least one checkpoint before the kill"
    resumed_from = saved[-1]

    run([sys.executable, "tools/train.py", str(config), "--work-dir", str(work), "--resume",
         "--cfg-options", f"train_cfg.max_iters={resumed_from + 4}", f"train_cfg.val_interval={resumed_from + 4}"])
    runs = sorted(work.glob("*/vis_data/scalars.json"))
    resumed = [json.loads(line) for line in runs[-1].read_text().splitlines() if '"loss"' in line]
    assert [r["iter"] for r in resumed] == list(range(resumed_from + 1, resumed_from + 5))  # continues, no restart
    start = sum(before[i] for i in (1, 2, 3)) / 3
    assert max(r["loss"] for r in resumed) < start, "the loss curve continues from the trained weights"
    assert not list(work.glob(".*.tmp"))


def test_test_tool_writes_results(tmp_path, data_dir):
    config, work = write_config(tmp_path, data_dir, max_iters=2, interval=2), tmp_path / "work"
    run([sys.executable, "tools/train.py", str(config), "--work-dir", str(work)])
    out = tmp_path / "results.json"
    run([sys.executable, "tools/test.py", str(config), "--checkpoint", str(work / "last"), "--out", str(out),
         "--work-dir", str(tmp_path / "test")])
    results = json.loads(out.read_text())
    assert results["model"] == "dstformer-lite-lift" and results["checkpoint"] == "last"  # outside the cwd: its name
    assert results["command"].startswith("python tools/test.py") and "--out" in results["command"]
    mpjpe = results["metrics"]["pose/mpjpe"]
    assert mpjpe["unit"] == "mm" and mpjpe["protocol"] == "h36m-p1" and mpjpe["value"] > 0
    assert results["metrics"]["pose/p_mpjpe"]["protocol"] == "h36m-p2"
    assert mpjpe["dataset"] == results["dataset"] and "held-out" in results["dataset"]
    assert results["posezoo_version"]
    # the same weights through the .pth checkpoint give the same numbers
    out2 = tmp_path / "results2.json"
    run([sys.executable, "tools/test.py", str(config), "--checkpoint", str(work / "iter_2.pth"), "--out", str(out2),
         "--work-dir", str(tmp_path / "test"), "--trust-checkpoint"])
    assert json.loads(out2.read_text())["metrics"]["pose/mpjpe"]["value"] == pytest.approx(mpjpe["value"], rel=1e-6)
