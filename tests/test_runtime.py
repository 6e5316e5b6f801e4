"""posezoo._runtime: heavy entry points re-exec themselves once with glibc's allocator told to keep
large freed blocks (a real exec of a real child process)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from posezoo._runtime import ALLOCATOR_ENV, OPT_OUT

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = """
import json, os, sys
print("before", os.getpid(), flush=True)
from posezoo._runtime import reexec_with_tuned_allocator, allocator_tuned
reexec_with_tuned_allocator()
print(json.dumps({"pid": os.getpid(), "tuned": allocator_tuned(), "argv": sys.argv[1:]}))
"""


def _run(tmp_path, **env) -> list[str]:
    script = tmp_path / "entry.py"
    script.write_text(SCRIPT)
    clean = {k: v for k, v in os.environ.items() if k not in ALLOCATOR_ENV and k != OPT_OUT}
    out = subprocess.run([sys.executable, str(script), "a", "--b=1"], capture_output=True, text=True, check=True,
                         env={**clean, "PYTHONPATH": str(ROOT), **env}).stdout
    return out.splitlines()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc allocator settings are Linux-only")
def test_reexec_once_same_pid_and_arguments(tmp_path):
    lines = _run(tmp_path)
    before = [line for line in lines if line.startswith("before")]
    assert len(before) == 2  # the script's start ran twice: once before, once after the exec
    after = json.loads(lines[-1])
    assert after == {"pid": int(before[0].split()[1]), "tuned": True, "argv": ["a", "--b=1"]}


def test_opt_out_keeps_glibc_defaults(tmp_path):
    lines = _run(tmp_path, **{OPT_OUT: "1"})
    assert len([line for line in lines if line.startswith("before")]) == 1
    assert json.loads(lines[-1])["tuned"] is False
