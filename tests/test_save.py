"""posezoo.save / create(dir): exact round trips, lazy loading, and refusal of bad folders."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

import posezoo
from posezoo.checkpoint import CheckpointError

TINY = dict(depth=1, dim_feat=16, dim_rep=16, num_heads=2, maxlen=9)


@pytest.fixture
def saved(tmp_path):
    model = posezoo.create("dstformer-lift", **TINY)
    return model, posezoo.save(model, tmp_path / "out")


def test_round_trip_is_exact(saved):
    model, folder = saved
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    again = posezoo.create(folder)
    for key, value in model.state_dict().items():
        assert torch.equal(value, again.state_dict()[key]), key
    x = torch.randn(2, 9, 17, 3)
    assert torch.equal(model(x), again(x))
    assert again.config == model.config and again.meta == model.meta


def test_config_describes_the_model(saved):
    model, folder = saved
    config = json.loads((folder / "config.json").read_text())
    assert config["format_version"] == 1 and config["library"] == "posezoo"
    assert config["model"]["backbone"]["type"] == "DSTformer"
    assert config["model"]["backbone"]["depth"] == 1
    assert config["meta"]["layout"] == "h36m-17"
    with safe_open(folder / "model.safetensors", "pt") as f:
        assert json.loads(f.metadata()["posezoo_config"]) == config


def test_loading_assigns_file_backed_tensors(saved):
    _, folder = saved
    again = posezoo.create(folder)
    assert not any(p.is_meta for p in again.parameters())
    assert all(p.device.type == "cpu" for p in again.parameters())


def test_checkpoint_argument_accepts_posezoo_safetensors(saved):
    model, folder = saved
    again = posezoo.create("dstformer-lift", checkpoint=folder / "model.safetensors", **TINY)
    assert torch.equal(again.backbone.temp_embed, model.backbone.temp_embed)


def _rewrite(folder, **changes):
    config = json.loads((folder / "config.json").read_text())
    for key, value in changes.items():
        config[key] = value
    (folder / "config.json").write_text(json.dumps(config))
    return config


def test_newer_format_version_is_refused(saved):
    _, folder = saved
    _rewrite(folder, format_version=99)
    with pytest.raises(ValueError, match="format_version 99.*upgrade posezoo"):
        posezoo.create(folder)


def test_unknown_keys_are_skipped_with_a_warning(saved):
    """A config.json from a newer posezoo with one more key still loads (issue 15), and says so."""
    from posezoo.errors import PosezooWarning

    model, folder = saved
    _rewrite(folder, surprise=1)
    with pytest.warns(PosezooWarning, match=r"unknown keys \['surprise'\].*ignored"):
        again = posezoo.create(folder)
    for key, value in model.state_dict().items():
        assert torch.equal(again.state_dict()[key], value)


def test_unregistered_type_is_refused(saved):
    _, folder = saved
    config = json.loads((folder / "config.json").read_text())
    config["model"]["backbone"]["type"] = "NoSuchNet"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(KeyError, match="no backbone named 'NoSuchNet'"):
        posezoo.create(folder)


def test_weights_that_do_not_fit_the_config(saved):
    _, folder = saved
    config = json.loads((folder / "config.json").read_text())
    config["model"]["backbone"]["depth"] = 2
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"missing \(\d+\): backbone.blocks_st.\*"):
        posezoo.create(folder)


def test_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no config.json"):
        posezoo.create(tmp_path)


def test_truncated_weights_file(saved):
    _, folder = saved
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        posezoo.create(folder)


def test_save_leaves_no_temporary_files(saved, tmp_path):
    model, folder = saved
    posezoo.save(model, folder)  # overwrite in place
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
