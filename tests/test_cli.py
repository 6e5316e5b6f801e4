"""The ``posezoo`` command line, run as a user runs it (a subprocess)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from safetensors import safe_open


def posezoo(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "posezoo.cli", *args], capture_output=True, text=True,
                            env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    if check and result.returncode != 0:
        raise AssertionError(result.stderr)
    return result


def test_list_shows_the_table_without_importing_torch():
    probe = ("import sys, posezoo.cli; posezoo.cli.main(['list', 'dstformer*']); "
             "assert 'torch' not in sys.modules, 'posezoo list imported torch'")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert "dstformer-lite-lift" in result.stdout and "42.47 M" in result.stdout
    assert "h36m-ft" in result.stdout


def test_list_pretrained_and_no_match():
    assert "dstformer-lift.h36m-ft" in posezoo("list", "--pretrained").stdout
    assert posezoo("list", "nothing*", check=False).returncode == 1


def test_info_json():
    info = json.loads(posezoo("info", "dstformer-lite-lift", "--json").stdout)
    assert info["params"] == 16_001_549 and info["layout"] == "h36m-17"


def test_info_unknown_name_exits_2_with_suggestion():
    result = posezoo("info", "dstformer-lyft", check=False)
    assert result.returncode == 2
    assert "Did you mean: dstformer-lift" in result.stderr
    assert "Traceback" not in result.stderr


def test_convert_official_checkpoint(fixtures_dir, tmp_path):
    src = fixtures_dir / "motionbert" / "dstformer_small_attfuse.official_ckpt.bin"
    out = tmp_path / "small.safetensors"
    result = posezoo("convert", "--family", "dstformer", "--model", "dstformer-lift", "--set", "dim_feat=64",
                     "--set", "dim_rep=128", "--set", "depth=2", "--set", "num_heads=4", "--set", "maxlen=27",
                     str(src), str(out))
    assert "110 tensors" in result.stdout
    with safe_open(out, "pt") as f:
        assert "backbone.joints_embed.weight" in f.keys() and "head.fc.weight" in f.keys()


def test_convert_refuses_a_mismatch(fixtures_dir, tmp_path):
    src = fixtures_dir / "motionbert" / "dstformer_small_attfuse.official_ckpt.bin"
    result = posezoo("convert", "--family", "dstformer", "--model", "dstformer-lift", str(src),
                     str(tmp_path / "x.safetensors"), check=False)
    assert result.returncode == 2 and "wrong shape" in result.stderr
    assert not (tmp_path / "x.safetensors").exists()


@pytest.mark.parametrize("args", [["--help"], ["list", "--help"]])
def test_help(args):
    assert "usage" in posezoo(*args).stdout
