"""A plain (non-editable) install carries the named entries: create() works from the wheel alone."""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_ships_the_entries(tmp_path):
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path / "dist"), str(ROOT)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    wheel = next((tmp_path / "dist").glob("posezoo-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "posezoo/_entries/dstformer.toml" in names
    site = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site),
                              str(wheel)], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr
    probe = ("import posezoo, posezoo.entries as e; "
             "assert 'site' in posezoo.__file__, posezoo.__file__; "
             "assert e.entry_dirs()[0].name == '_entries', e.entry_dirs(); "
             "m = posezoo.create('dstformer-lift', depth=1, dim_feat=16, dim_rep=16, num_heads=2, maxlen=9); "
             "print(sorted(posezoo.list_models()))")
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path,
                         env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr
    assert "dstformer-lift" in run.stdout
