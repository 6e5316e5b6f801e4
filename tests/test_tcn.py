"""VideoPose3D TCN against the official fixtures (random weights, small configs), its padding and
window forms, the official checkpoint container and the named entries."""
from __future__ import annotations

import json
import pickle
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import posezoo
from posezoo.checkpoint import CheckpointError, read_weights
from posezoo.entries import get_entry, list_models
from posezoo.factory import build
from posezoo.models.tcn import TemporalConvNet, convert_tcn
from posezoo.registry import BACKBONES

FOLDER = "tcn-poseformer-pct"
FIXTURES = ["tcn_fw3-3_c64", "tcn_fw3-3-3_c32_causal"]


def _load(fixtures_dir, name):
    path = fixtures_dir / FOLDER / f"{name}.safetensors"
    if not path.is_file():
        pytest.skip(f"fixture {path} not found")
    tensors = load_file(path)
    meta = json.loads((fixtures_dir / FOLDER / f"{name}.json").read_text())
    state = {k[len("state_dict."):]: v for k, v in tensors.items() if k.startswith("state_dict.")}
    return state, tensors, meta


def _fixture_model(meta, **kw):
    ctor = meta["constructor"]["TemporalModel"]
    assert ctor["num_joints_in"] == ctor["num_joints_out"] == 17 and ctor["in_features"] == 2
    return posezoo.create("tcn-27f-lift", filter_widths=ctor["filter_widths"], channels=ctor["channels"],
                          causal=ctor["causal"], dropout=ctor["dropout"], dense=ctor["dense"], **kw)


@pytest.fixture(params=FIXTURES)
def fixture(request, fixtures_dir):
    return (request.param, *_load(fixtures_dir, request.param))


def _run(model, mode, x):
    model.backbone.mode = mode
    with torch.no_grad():
        return model(x)


def test_reproduces_official_outputs_fp32(fixture, fixtures_dir):
    """Both official classes, from the official checkpoint container, through posezoo.create."""
    name, _, t, meta = fixture
    model = _fixture_model(meta, mode="valid", checkpoint=fixtures_dir / FOLDER / f"{name}.official_layout.pt")
    assert model.backbone.receptive_field == meta["receptive_field"]
    noise = meta["max_abs_diff_fp32_vs_fp64"]
    checks = [  # (mode, input, reference, recorded fp32 noise)
        ("valid", "input.x", "output.y", noise["y"]),  # TemporalModel
        ("window", "input.x_1f", "output.y_1f", noise["y_1f"]),  # TemporalModelOptimized1f
        ("valid", "input.x_1f", "aux.y_1f_via_TemporalModel", noise["y_1f"]),
    ]
    for mode, x, ref, fp32_noise in checks:
        out = _run(model, mode, t[x])
        assert out.shape == t[ref].shape
        tol = max(10 * fp32_noise, 1e-6)
        torch.testing.assert_close(out, t[ref], atol=tol, rtol=1e-5, msg=lambda m: f"{name} {mode} {ref}: {m}")
        assert (out - t[ref]).abs().max().item() <= 1e-5


def test_reproduces_official_outputs_fp64(fixture):
    name, state, t, meta = fixture
    model = _fixture_model(meta, mode="valid").double()
    model.load_state_dict(convert_tcn(state))
    for mode, x, ref in [("valid", "input.x", "output_fp64.y"), ("window", "input.x_1f", "output_fp64.y_1f")]:
        err = (_run(model, mode, t[x].double()) - t[ref]).abs().max().item()
        assert err <= 1e-9, f"{name} {mode}: max abs error {err:.2e}"


def test_strided_equals_dilated_on_same_weights(fixture):
    """The window (strided) form on rf frames equals the dilated form, per output frame of a sequence."""
    _, state, t, meta = fixture
    model = _fixture_model(meta, mode="valid").double()
    model.load_state_dict(convert_tcn(state))
    rf = model.backbone.receptive_field
    x = t["input.x"].double()  # (B, T, 17, 2), T > rf
    sequence = _run(model, "valid", x)
    windows = torch.stack([_run(model, "window", x[:, i:i + rf])[:, 0] for i in range(x.shape[1] - rf + 1)], 1)
    assert windows.shape == sequence.shape
    torch.testing.assert_close(windows, sequence, atol=1e-12, rtol=0)


def test_sequence_mode_pads_like_videopose3d_evaluation(fixture):
    """mode='sequence': T frames in, T out; equal to the official forward on the input padded as
    common/generators.py UnchunkedGenerator does (np.pad 'edge', pad + causal_shift on the left)."""
    _, state, t, meta = fixture
    model = _fixture_model(meta, mode="sequence").double()
    model.load_state_dict(convert_tcn(state))
    rf = model.backbone.receptive_field
    pad = (rf - 1) // 2
    causal_shift = pad if meta["constructor"]["TemporalModel"]["causal"] else 0
    for frames in (1, 5, rf, t["input.x"].shape[1]):  # shorter than, equal to and longer than rf
        x = t["input.x"][:, :frames].double()
        out = _run(model, "sequence", x)
        assert out.shape == (x.shape[0], frames, 17, 3)
        padded = np.pad(x.numpy(), ((0, 0), (pad + causal_shift, pad - causal_shift), (0, 0), (0, 0)), "edge")
        reference = _run(model, "valid", torch.from_numpy(padded))
        torch.testing.assert_close(out, reference, atol=1e-12, rtol=0)


def test_causal_model_ignores_future_frames(fixtures_dir):
    state, t, meta = _load(fixtures_dir, "tcn_fw3-3-3_c32_causal")
    model = _fixture_model(meta, mode="sequence")
    model.load_state_dict(convert_tcn(state))
    x = t["input.x"]
    changed = x.clone()
    changed[:, 20:] += 1.0
    a, b = _run(model, "sequence", x), _run(model, "sequence", changed)
    assert torch.equal(a[:, :20], b[:, :20])
    assert not torch.allclose(a[:, 20:], b[:, 20:])


def test_wrong_frame_count_names_the_receptive_field():
    model = posezoo.create("tcn-27f-lift", channels=8, mode="window")
    with torch.no_grad():
        assert model(torch.zeros(2, 27, 17, 2)).shape == (2, 1, 17, 3)
        with pytest.raises(ValueError, match="receptive field of 27 frames, got T=26"):
            model(torch.zeros(2, 26, 17, 2))
        with pytest.raises(ValueError, match="receptive field of 27 frames, got T=30"):
            model(torch.zeros(2, 30, 17, 2))
        model.backbone.mode = "valid"
        assert model(torch.zeros(1, 30, 17, 2)).shape == (1, 4, 17, 3)
        with pytest.raises(ValueError, match="at least the receptive field of 27 frames, got T=20"):
            model(torch.zeros(1, 20, 17, 2))
    with pytest.raises(ValueError, match="mode must be one of"):
        model.backbone.mode = "strided"


def test_constructor_validation():
    with pytest.raises(ValueError, match="odd widths"):
        TemporalConvNet(filter_widths=[3, 4], channels=8)
    with pytest.raises(ValueError, match="dense=True"):
        TemporalConvNet(channels=8, dense=True, mode="window")


def test_dense_ablation_keeps_receptive_field():
    net = TemporalConvNet(filter_widths=[3, 3, 3], channels=8, dense=True).eval()
    assert [c.kernel_size[0] for c in net.layers_conv] == [7, 1, 19, 1]
    assert all(c.dilation == (1,) for c in net.layers_conv)
    net.mode = "valid"
    assert net(torch.zeros(1, 27, 17, 2)).shape == (1, 1, 8)


def test_official_param_counts():
    """Computed from the official architecture: expand conv/bn, per block a dilated conv, a 1x1 conv,
    two BatchNorms, and shrink (here head.fc); built on the meta device to allocate nothing."""
    expected = {"tcn-27f-lift": 8_555_571, "tcn-81f-lift": 12_753_971, "tcn-243f-lift": 16_952_371}
    for name, count in expected.items():
        entry, _ = get_entry(name)
        model = build(entry.model_config(), device="meta")
        assert sum(p.numel() for p in model.parameters()) == count == entry.params
        assert model.backbone.receptive_field == entry.extra["receptive_field"]
        assert model.backbone.feature_layout == "frame" and model.head.fc.out_features == 51
    model = build(get_entry("tcn-243f-lift")[0].model_config(), device="meta")
    assert len(model.state_dict()) == 56  # as the official 243f state dict: 1 + 5 + 2 + 4 * (2 + 2 * 5)


def test_backbone_registered_under_alias():
    assert BACKBONES.get("tcn") is BACKBONES.get("TemporalConvNet") is TemporalConvNet
    model = posezoo.create("tcn-27f-lift", channels=8)
    assert model.config["backbone"]["mode"] == "sequence"
    assert model(torch.zeros(1, 3, 17, 2)).shape == (1, 3, 17, 3)


def test_published_weights_are_listed():
    assert "tcn-243f-lift.h36m-cpn" in list_models("tcn*")
    entry, weights = get_entry("tcn-243f-lift.h36m-cpn")
    assert weights.source == "https://dl.fbaipublicfiles.com/video-pose-3d/pretrained_h36m_cpn.bin"
    assert weights.hf_hub_id == "posezoo/tcn-243f-lift.h36m-cpn"
    assert "46.8 mm" in weights.description
    assert entry.license == weights.license == "CC-BY-NC-4.0"
    assert entry.output["units"] == "m" and entry.output["root_relative"] is True


def test_official_container_needs_the_allow_list(fixtures_dir):
    """The container holds a pickled numpy RandomState: weights_only=True refuses it without the
    converter's allow-list, and opens it with it (never weights_only=False)."""
    path = fixtures_dir / FOLDER / "tcn_fw3-3_c64.official_layout.pt"
    with pytest.raises(CheckpointError, match="not safe to unpickle"):
        read_weights(path)
    with torch.serialization.safe_globals(convert_tcn.safe_globals):
        container = torch.load(path, map_location="cpu", weights_only=True)
    assert isinstance(container["random_state"], np.random.RandomState)
    state = convert_tcn(container["model_pos"])
    assert state["head.fc.weight"].shape == (51, 64) and "backbone.layers_bn.1.running_var" in state


_OLD_RANDOMSTATE_CTOR = getattr(np.random, "__RandomState_ctor")
_RECONSTRUCT = np.array(0).__reduce__()[0]


class _Numpy1Pickler(pickle._Pickler):
    """Writes numpy objects with the global names numpy 1.x (< 1.17) used, as in the 2018 release."""

    def reducer_override(self, obj):
        if isinstance(obj, np.random.RandomState):
            return _OLD_RANDOMSTATE_CTOR, (), obj.get_state()
        return NotImplemented

    def save_global(self, obj, name=None):
        if obj is _RECONSTRUCT:
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
            self.memoize(obj)
            return
        super().save_global(obj, name)


def test_numpy1_era_container_opens(tmp_path, fixtures_dir):
    state, t, meta = _load(fixtures_dir, "tcn_fw3-3_c64")
    path = tmp_path / "pretrained.bin"
    container = {"epoch": 80, "lr": 1e-3, "random_state": np.random.RandomState(1234), "model_pos": state,
                 "model_traj": None}
    pickle_module = types.ModuleType("numpy1_pickle")
    pickle_module.Pickler = _Numpy1Pickler
    torch.save(container, path, pickle_module=pickle_module)
    assert "numpy.core.multiarray._reconstruct" in torch.serialization.get_unsafe_globals_in_checkpoint(path)
    model = _fixture_model(meta, mode="valid", checkpoint=path)
    torch.testing.assert_close(_run(model, "valid", t["input.x"]), t["output.y"], atol=1e-5, rtol=1e-5)


def test_wrong_family_checkpoint_is_named(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "other.safetensors"
    save_file({"joints_embed.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(CheckpointError, match="not a VideoPose3D TCN checkpoint"):
        posezoo.create("tcn-27f-lift", channels=8, checkpoint=path)


def test_save_and_reload_keeps_mode(tmp_path):
    model = posezoo.create("tcn-27f-lift", channels=8, causal=True, mode="valid")
    posezoo.save(model, tmp_path)
    again = posezoo.create(str(tmp_path))
    assert again.backbone.mode == "valid" and again.backbone.causal
    x = torch.randn(1, 30, 17, 2)
    with torch.no_grad():
        torch.testing.assert_close(again(x), model(x))


def test_receptive_field_of_mixed_widths_and_training_in_window_form():
    """-arc 3,5,5 (DOCUMENTATION.md) spans 75 frames; the window form trains (BN batch statistics,
    gradients to every weight) and the trained weights run whole sequences in the other form."""
    net = TemporalConvNet(filter_widths=[3, 5, 5], channels=8, mode="window")
    assert net.receptive_field == 75 and net.sequence_padding() == (37, 37)
    net.set_bn_momentum(0.5)
    assert all(bn.momentum == 0.5 for bn in (net.expand_bn, *net.layers_bn))
    net.train()
    net(torch.randn(4, 75, 17, 2)).square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())
    assert int(net.expand_bn.num_batches_tracked) == 1
    net.eval()
    net.mode = "sequence"
    assert net(torch.randn(1, 10, 17, 2)).shape == (1, 10, 8)


def test_eval_after_fused_steps_uses_the_current_weights():
    """Validation in the middle of training (issue 16: the TCN's validation at iteration 400 did not
    reproduce in tools/test.py): fused AdamW steps and train-mode BatchNorm statistics change the
    tensors in place without bumping their version counters, so the folded eval weights of an
    earlier validation must not be reused."""
    torch.manual_seed(0)
    model = posezoo.create("tcn-27f-lift", channels=16, mode="window")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, fused=True)
    x = torch.randn(8, 27, 17, 2)
    for _ in range(2):  # train, then validate, twice: the second validation sees new weights
        model.train()
        model(x).square().mean().backward()
        optimizer.step()
        optimizer.zero_grad()
        model.eval()
        with torch.no_grad():
            fast = model(x)
            model.backbone.fast_path = False
            reference = model(x)
            model.backbone.fast_path = True
        torch.testing.assert_close(fast, reference, rtol=1e-5, atol=1e-5)
    model.train()
    model(x)  # new running statistics only
    model.eval()
    with torch.no_grad():
        fast = model(x)
        model.backbone.fast_path = False
        torch.testing.assert_close(fast, model(x), rtol=1e-5, atol=1e-5)


FIXTURE_15_TO_17 = Path(__file__).parent / "fixtures" / "tcn_in15_out17.safetensors"


def test_joints_in_differ_from_joints_out(tmp_path):
    """VideoPose3D's TemporalModel allows num_joints_in != num_joints_out (its detectron model: COCO-17
    in, H36M-17 out; Stacked Hourglass: 16 in, 17 out). tests/fixtures/tcn_in15_out17.safetensors
    holds the official TemporalModel (common/model.py at 1afb1ca) with random weights, 15 joints in,
    17 out, its input and output, and TemporalModelOptimized1f's on the same weights."""
    from safetensors import safe_open

    with safe_open(FIXTURE_15_TO_17, "pt") as f:
        ctor = json.loads(f.metadata()["constructor"])
    t = load_file(FIXTURE_15_TO_17)
    official = {k[len("state_dict."):]: v for k, v in t.items() if k.startswith("state_dict.")}
    path = tmp_path / "official.bin"
    torch.save({"epoch": 1, "model_pos": official}, path)
    args = {k: ctor[k] for k in ("num_joints_in", "num_joints_out", "filter_widths", "channels", "causal", "dropout")}
    model = posezoo.create("tcn-27f-lift", checkpoint=path, mode="valid", **args)
    assert model.head.fc.out_features == 17 * 3 and model.backbone.num_joints == 15
    torch.testing.assert_close(_run(model, "valid", t["input.x"]), t["output.y"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(_run(model, "window", t["input.x_window"]), t["output.y_window"], atol=1e-5, rtol=1e-5)
    posezoo.save(model, tmp_path / "saved")
    again = posezoo.create(str(tmp_path / "saved"))
    torch.testing.assert_close(_run(again, "valid", t["input.x"]), t["output.y"], atol=1e-5, rtol=1e-5)


def test_coco_in_h36m_out_entry_lifts_coco_as_it_comes(tmp_path):
    """tcn-243f-lift-coco (VideoPose3D's pretrained_h36m_detectron_coco.bin): the converter takes the
    official checkpoint, the meta records COCO-17 in and H36M-17 out, and posezoo.lift feeds COCO
    keypoints to it unconverted and answers in H36M joints; flip test mirrors each side in its layout."""
    from posezoo.commands import convert
    from posezoo.data.layouts import get_layout
    from posezoo.engine.tasks import LiftTask
    from posezoo.lifting import Lifter

    small = dict(filter_widths=[3, 3], channels=16)
    official = {("shrink." + k[len("head.fc."):] if k.startswith("head.fc.") else k[len("backbone."):]):
                (v[..., None] if k == "head.fc.weight" else v)
                for k, v in posezoo.create("tcn-243f-lift-coco", **small).state_dict().items()}
    path = tmp_path / "pretrained_h36m_detectron_coco.bin"
    torch.save({"model_pos": official}, path)
    args = convert.argparse.Namespace(family="tcn", model="tcn-243f-lift-coco", input=str(path),
                                      output=str(tmp_path / "coco.safetensors"),
                                      set=[f"{k}={json.dumps(v)}" for k, v in small.items()])
    assert convert.run(args) == 0
    model = posezoo.create("tcn-243f-lift-coco", checkpoint=tmp_path / "coco.safetensors", **small)
    assert model.meta["layout"] == "coco-17" and model.meta["output"]["layout"] == "h36m-17"
    rng = np.random.default_rng(0)
    coco = np.concatenate([rng.uniform(200, 800, (30, 17, 2)), np.ones((30, 17, 1))], -1).astype(np.float32)
    lifter = Lifter(model)
    assert (lifter.layout, lifter.output_layout) == ("coco-17", "h36m-17")
    result = posezoo.lift(coco, layout="coco-17", image_size=(1000, 1000), model=lifter, flip=True)
    np.testing.assert_allclose(result.inputs_2d[0], coco)  # fed as COCO, not converted to H36M
    assert result.layout == "h36m-17" and list(result.joint_names) == list(get_layout("h36m-17").joints)
    assert result.poses[0].shape == (30, 17, 3)
    task = LiftTask(model=dict(name="tcn-243f-lift-coco", **small), flip_test=True, input_channels=2).eval()
    task.model.load_state_dict(model.state_dict())
    x = torch.from_numpy(coco[None, :, :, :2] / 1000 * 2 - 1)
    with torch.no_grad():
        mirrored = get_layout("h36m-17").flip(task.model(get_layout("coco-17").flip(x)))
        torch.testing.assert_close(task(x), (task.model(x) + mirrored) / 2)
