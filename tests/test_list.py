"""`posezoo list`: full names at any width, --json, a clear word when nothing matches; posezoo.registry."""
import json

from posezoo.cli import main


def test_list_json_and_full_names(capsys, monkeypatch):
    assert main(["list", "poseformerv2*", "--pretrained", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    names = [r["name"] for r in rows]
    assert "poseformerv2-81f-k3c3-lift.h36m-cpn" in names and all(r["layout"] == "h36m-17" for r in rows)
    assert {"name", "params", "layout", "max_frames", "weights"} == set(rows[0])
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["list", "poseformerv2*", "--pretrained"]) == 0
    table = capsys.readouterr().out
    assert all(name in table for name in names)  # never cut to "poseformerv2-81f-k…"
    assert "…" not in table


def test_list_without_matches_says_so(capsys):
    assert main(["list", "foo*"]) == 1
    captured = capsys.readouterr()
    assert "no named models match 'foo*'" in captured.err and captured.out == ""
    assert main(["list", "foo*", "--json"]) == 1
    assert json.loads(capsys.readouterr().out) == []


def test_registry_reachable_from_the_package():
    import posezoo

    assert posezoo.registry.BACKBONES.get("TemporalConvNet") is not None  # the README's plugin snippet
