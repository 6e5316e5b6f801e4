"""Third-party parts through the ``posezoo.plugins`` entry-point group.

The plugin is a real distribution on sys.path (a package plus its ``.dist-info`` with
``entry_points.txt``), found by importlib.metadata exactly as an installed one is.
"""
from __future__ import annotations

import sys
import textwrap

import pytest
import torch

import posezoo
from posezoo import registry

PLUGIN_MODULE = '''
import torch
from torch import nn
from posezoo.registry import BACKBONES


@BACKBONES.register_module()
class {name}(nn.Module):
    """A per-joint MLP: (N, T, J, C) -> (N, T, J, width)."""
    feature_layout = "joint"

    def __init__(self, dim_in: int = 3, width: int = 8, num_joints: int = 17, max_frames=None):
        super().__init__()
        self.dim_in, self.num_joints, self.max_frames, self.in_channels = dim_in, num_joints, max_frames, width
        self.fc = nn.Linear(dim_in, width)

    def forward(self, x):
        return torch.tanh(self.fc(x))
'''


def _install_plugin(root, dist: str, module: str, backbone: str):
    (root / f"{module}.py").write_text(PLUGIN_MODULE.format(name=backbone))
    info = root / f"{dist}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(f"""\
        [posezoo.plugins]
        {module} = {module}
        """))


@pytest.fixture
def plugin_path(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in list(registry.BACKBONES.module_dict):
        if name.startswith("Toy"):
            registry.BACKBONES.module_dict.pop(name)
    for name in [m for m in sys.modules if m.startswith("toy_")]:
        sys.modules.pop(name)


def test_plugin_backbone_composes_with_the_lift_head(plugin_path):
    _install_plugin(plugin_path, "toy-plugin", "toy_parts", "ToyMLP")
    registry.reload_plugins()
    assert "ToyMLP" in registry.BACKBONES.names()
    model = posezoo.create(backbone="ToyMLP", head="lift", width=6)
    out = model(torch.randn(2, 4, 17, 3))
    assert out.shape == (2, 4, 17, 3)
    assert model.head.fc.in_features == 6  # the head was sized from the plugin's features


def test_duplicate_name_names_both_sources(plugin_path):
    _install_plugin(plugin_path, "toy-clash", "toy_clash", "DSTformer")
    with pytest.raises(KeyError, match=r"already by posezoo\.models\.dstformer\.DSTformer, again by "
                                       r"toy_clash\.DSTformer from plugin toy-clash"):
        registry.reload_plugins()
