"""Engine pieces in one process: task models, optimiser constructor and bf16 wrapper, checkpoint
loader, data checks before training, the NaN stop, and a short real Runner run with EMA whose
safetensors exports load back through posezoo.create."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from posezoo.checkpoint import CheckpointError
from posezoo.engine import compat
from posezoo.engine.hooks import check_dataset
from posezoo.engine.optim import BF16OptimWrapper, ParamGroupConstructor
from posezoo.engine.runner import check_paths, load_config, prepare, recipe_dir, recipe_names, resume_checkpoint
from posezoo.engine.tasks import ActionTask, LiftTask
from posezoo.registry import DATASETS, HEADS, MODELS

TINY = dict(name="dstformer-lite-lift", depth=1, dim_feat=16, dim_rep=16, num_heads=2, mlp_ratio=2, maxlen=9)


def tiny_config(data: Path, work_dir: Path, **extra) -> Config:
    """The DSTformer lift recipe, shrunk: 9-frame clips of bandai1, a 1-block 16-wide model."""
    files = [str(data / "bandai1.npz")]
    cfg = load_config("dstformer-lift")
    cfg.merge_from_dict({
        "work_dir": str(work_dir), "model.model": TINY, "model.flip_test": False,
        "train_dataloader.batch_size": 4, "train_dataloader.dataset.files": files,
        "train_dataloader.dataset.clip_len": 9, "train_dataloader.dataset.stride": 9,
        "val_dataloader.batch_size": 32, "val_dataloader.dataset.files": files,
        "val_dataloader.dataset.clip_len": 9, "val_dataloader.dataset.stride": 400,
        "test_dataloader.dataset.files": files, "test_dataloader.dataset.clip_len": 9,
        "test_dataloader.dataset.stride": 400,
        "train_cfg.max_iters": 6, "train_cfg.val_interval": 3,
        "default_hooks.checkpoint.interval": 3, "default_hooks.logger.interval": 1,
        "optim_wrapper.optimizer.lr": 2e-3,
        "param_scheduler": [dict(type="ConstantLR", factor=1.0, by_epoch=False, begin=0, end=6)],
        **extra,
    })
    return cfg


def lift_batch(b=2, t=9):
    x = torch.rand(b, t, 17, 3) * 2 - 1
    return {"inputs": x, "target": torch.randn(b, t, 17, 3) * 0.3, "meta": {"clip": [f"c{i}" for i in range(b)],
                                                                           "start": torch.arange(b)}}


def test_recipes_load_and_inherit():
    names = recipe_names()
    assert {"dstformer-lift", "dstformer-lite-lift", "dstformer-lift-finetune", "dstformer-lift-pretrain",
            "dstformer-lift-small"} <= set(names)
    for name in names:
        cfg = load_config(name)
        assert cfg.default_scope == "posezoo" and cfg.train_dataloader.sampler.type == "InfiniteSampler"
        assert cfg.model.type in MODELS.names()
        assert cfg.optim_wrapper.optimizer.get("fused"), f"{name}: recipes train with the fused AdamW"
    lite = load_config("dstformer-lite-lift")
    assert lite.model.model.name == "dstformer-lite-lift" and lite.optim_wrapper.optimizer.lr == 5e-4
    assert lite.model.losses == {"mpjpe": 1.0, "n_mpjpe": 0.5, "velocity": 20.0}  # MotionBERT pose3d weights
    assert load_config("dstformer-lift-pretrain").train_dataloader.dataset.corrupt["mask_T_ratio"] == 0.1
    with pytest.raises(FileNotFoundError, match="Did you mean"):
        load_config("dstformer-lfit")
    assert (recipe_dir() / "_runtime.py").is_file()


def test_lift_task_modes():
    task = LiftTask(model=TINY, losses=dict(mpjpe=1.0, n_mpjpe=0.5, velocity=20.0))
    batch = lift_batch()
    losses = task(**batch, mode="loss")
    assert set(losses) == {"loss_mpjpe", "loss_n_mpjpe", "loss_velocity"}
    task.eval()
    preds = task(**batch, mode="predict")
    assert len(preds) == 2 and preds[1]["meta"] == {"clip": "c1", "start": 1}
    assert torch.all(preds[0]["pred"][:, 0] == 0)  # root-relative prediction
    assert task.model.meta["output"]["units"] == "m" and task.model.meta["max_frames"] == 9
    with pytest.raises(KeyError, match="known"):
        LiftTask(model=TINY, losses=dict(mpjep=1.0))
    with pytest.raises(ValueError, match="name"):
        LiftTask(model=dict(depth=1))


def test_centre_frame_models_and_centre_scoring():
    """PoseFormer lifts a window to its centre frame: it trains and is scored against the target's
    centre frame; score_frames='centre' scores a seq2seq model on that same frame only."""
    batch = lift_batch(t=9)
    centre = batch["target"][:, 4:5]
    pf = LiftTask(model=dict(name="poseformer-9f-lift", embed_dim_ratio=4, depth=1, num_heads=2), input_channels=2,
                  losses=dict(mpjpe=1.0, velocity=20.0))
    losses = pf(**batch, mode="loss")
    pred = pf(batch["inputs"])
    assert pred.shape == (2, 1, 17, 3)
    torch.testing.assert_close(losses["loss_mpjpe"], (pred - centre).norm(dim=-1).mean())
    assert losses["loss_velocity"] == 0  # one frame: no velocity
    seq = LiftTask(model=TINY, score_frames="centre", root_relative=False).eval()
    out = seq(**batch, mode="predict")
    full = seq.lift(batch["inputs"])
    assert out[0]["pred"].shape == (1, 17, 3)
    torch.testing.assert_close(out[1]["pred"], full[1, 4:5])
    torch.testing.assert_close(out[1]["target"], centre[1])
    with pytest.raises(ValueError, match="score_frames"):
        LiftTask(model=TINY, score_frames="middle")


def test_flip_test_is_symmetric():
    task = LiftTask(model=TINY, flip_test=True).eval()
    x = lift_batch(1)["inputs"]
    flipped = task._flip(x)
    with torch.no_grad():
        a, b = task.lift(x), task.lift(flipped)
    torch.testing.assert_close(task._flip(b), a, atol=1e-5, rtol=1e-5)  # f(flip x) = flip f(x) with flip test


class _MeanPoolClassifier(torch.nn.Module):
    """A real (tiny) classification head for the ActionTask test: mean over persons, frames, joints."""

    def __init__(self, in_channels: int, num_classes: int = 4):
        super().__init__()
        self.fc = torch.nn.Linear(in_channels, num_classes)

    def forward(self, features):
        return self.fc(features.mean(dim=tuple(range(1, features.ndim - 1))))


def test_action_task():
    if HEADS.get("_MeanPoolClassifier") is None:
        HEADS.register_module(module=_MeanPoolClassifier)
    model = dict(backbone=dict(type="DSTformer", **{k: v for k, v in TINY.items() if k != "name"}),
                 head=dict(type="_MeanPoolClassifier", num_classes=4))
    task = ActionTask(model=model)
    x, label = torch.rand(3, 2, 9, 17, 3), torch.tensor([0, 3, 1])
    loss = task(inputs=x, label=label, mode="loss")["loss_ce"]
    loss.backward()
    preds = task(inputs=x, label=label, mode="predict")
    assert [p["label"] for p in preds] == [0, 3, 1] and preds[0]["logits"].shape == (4,)


def test_param_groups_and_bf16():
    from mmengine.registry import DefaultScope

    task = LiftTask(model=TINY)
    with DefaultScope.overwrite_default_scope("posezoo"):  # as inside a Runner with default_scope='posezoo'
        wrapper = ParamGroupConstructor(
            dict(type="BF16OptimWrapper", optimizer=dict(type="AdamW", lr=1e-3, weight_decay=0.01, fused=True)),
            dict(lr_mult={"backbone": 0.1}, no_decay_1d=True))(task)
    assert isinstance(wrapper, BF16OptimWrapper) and wrapper.optimizer.defaults["fused"]  # as the recipes
    groups = {(g["lr"], g["weight_decay"]): g["params"] for g in wrapper.optimizer.param_groups}
    assert set(groups) == {(1e-4, 0.01), (1e-4, 0.0), (1e-3, 0.01), (1e-3, 0.0)}
    head_bias = task.model.head.fc.bias
    assert any(p is head_bias for p in groups[(1e-3, 0.0)])
    norm_weight = task.model.backbone.norm.weight
    assert any(p is norm_weight for p in groups[(1e-4, 0.0)])  # backbone lr AND no decay, both rules apply
    before = task.model.head.fc.weight.detach().clone()
    with wrapper.optim_context(task):
        pred = task.model(lift_batch()["inputs"])
    assert pred.dtype == torch.bfloat16  # autocast on CPU
    wrapper.update_params(pred.float().square().mean())
    assert task.model.head.fc.weight.dtype == torch.float32
    assert not torch.equal(before, task.model.head.fc.weight)


def test_nan_loss_stops_with_iteration():
    from mmengine.logging import MessageHub

    task = LiftTask(model=TINY)
    MessageHub.get_current_instance().update_info("iter", 41)
    batch = lift_batch()
    batch["target"][0, 0, 0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="iteration 42"):
        task.parse_losses(task(**batch, mode="loss"))


def test_checkpoint_loader_trust(tmp_path):
    from mmengine.logging import HistoryBuffer

    path = tmp_path / "run" / "iter_1.pth"
    path.parent.mkdir()
    torch.save({"state_dict": {"w": torch.ones(2)}, "message_hub": HistoryBuffer()}, path)
    os.environ.pop(compat.TRUST_ENV, None)
    with pytest.raises(CheckpointError, match="not safe to unpickle.*--trust-checkpoint"):
        compat.load_from_local(str(path))
    compat.trust_directory(path.parent)
    assert torch.equal(compat.load_from_local(str(path))["state_dict"]["w"], torch.ones(2))
    plain = tmp_path / "weights.pth"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, plain)  # weights only: no trust needed
    assert torch.equal(compat.load_from_local(str(plain))["state_dict"]["w"], torch.zeros(2))
    with pytest.raises(FileNotFoundError):
        compat.load_from_local(str(tmp_path / "missing.pth"))


def test_atomic_put_and_resume_choice(tmp_path):
    from mmengine.fileio.backends.local_backend import LocalBackend

    good = tmp_path / "iter_2.pth"
    LocalBackend().put(b"", good)  # goes through temp file + os.replace
    torch.save({"x": torch.ones(1)}, good)
    torn = tmp_path / "iter_4.pth"
    torn.write_bytes(good.read_bytes()[:50])  # what a non-atomic writer leaves when killed
    (tmp_path / "last_checkpoint").write_text(str(torn))
    (tmp_path / ".iter_6.pth.abc.tmp").write_bytes(b"partial")
    (tmp_path / ".iter_8.pth.x1y2.tmp.pth").write_bytes(b"partial")  # the older kept-suffix name (issue 13)
    assert resume_checkpoint(tmp_path) == str(good)
    assert not list(tmp_path.glob(".*.tmp*"))


def test_checks_before_training(tmp_path, data_dir):
    cfg = tiny_config(data_dir, tmp_path)
    check_paths(cfg)
    missing = tiny_config(data_dir, tmp_path, **{"train_dataloader.dataset.files": [str(tmp_path / "nope.npz")]})
    with pytest.raises(FileNotFoundError, match="train_dataloader.dataset.files.*nope.npz"):
        check_paths(missing)
    (tmp_path / "fake.npz").write_text("not a zip")
    wrong = tiny_config(data_dir, tmp_path, **{"val_dataloader.dataset.files": [str(tmp_path / "fake.npz")]})
    with pytest.raises(ValueError, match="not a numpy .npz"):
        check_paths(wrong)
    task = LiftTask(model=TINY)
    dataset_cfg = dict(cfg.val_dataloader.dataset)
    check_dataset(task, DATASETS.build(dataset_cfg), "val")
    with pytest.raises(ValueError, match="layout 'bandai-21'.*'h36m-17'"):
        check_dataset(task, DATASETS.build(dict(dataset_cfg, layout_out="bandai-21")), "val")

    class NaNData(list):
        layout_out = "h36m-17"

    bad = NaNData([{"inputs": torch.full((9, 17, 3), float("nan")), "target": torch.zeros(9, 17, 3)}])
    with pytest.raises(ValueError, match="NaN"):
        check_dataset(task, bad, "train")
    with pytest.raises(ValueError, match="J=17"):
        check_dataset(task, NaNData([{"inputs": torch.zeros(9, 21, 3)}]), "train")
    two = LiftTask(model=dict(TINY, dim_in=2), input_channels=2)  # x, y only: confidence dropped
    check_dataset(two, DATASETS.build(dataset_cfg), "val")
    assert two(**lift_batch(), mode="loss")["loss_mpjpe"] > 0
    with pytest.raises(ValueError, match="C=2"):
        check_dataset(LiftTask(model=dict(TINY, dim_in=2)), DATASETS.build(dataset_cfg), "val")
    with pytest.raises(ValueError, match="empty"):
        check_dataset(task, NaNData(), "train")


@pytest.mark.slow
def test_runner_ema_exports_and_nan_stop(tmp_path, data_dir):
    """A real 6-iteration Runner run with EMA: last/ and best/ are posezoo.save folders holding the EMA
    weights of the checkpoint; then a run with an absurd lr stops on a NaN loss naming the iteration."""
    import posezoo
    from mmengine.runner import Runner
    from safetensors.torch import load_file

    hooks = load_config("dstformer-lift-pretrain").custom_hooks
    cfg = prepare(tiny_config(data_dir, tmp_path / "ema", custom_hooks=hooks), None, "none")
    Runner.from_cfg(cfg).train()
    work = Path(cfg.work_dir)
    assert sorted(p.name for p in work.glob("iter_*.safetensors")) == ["iter_3.safetensors", "iter_6.safetensors"]
    ckpt = torch.load(work / "iter_6.pth", weights_only=False)
    assert "ema_state_dict" in ckpt
    exported = load_file(work / "iter_6.safetensors")
    for key, value in exported.items():
        torch.testing.assert_close(value, ckpt["state_dict"][f"model.{key}"], rtol=0, atol=0)
    model = posezoo.create(str(work / "last"))
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, exported[key], rtol=0, atol=0)
    assert json.loads((work / "best" / "config.json").read_text())["meta"]["output"]["units"] == "m"
    assert list(work.glob("best_pose_mpjpe_iter_*.pth"))

    nan = tiny_config(data_dir, tmp_path / "nan", **{"optim_wrapper.optimizer.lr": 1e30,
                                                     "optim_wrapper.clip_grad": None})
    with pytest.raises(FloatingPointError, match=r"at iteration \d+"):
        Runner.from_cfg(prepare(nan, None, "none")).train()


def test_runs_in_one_process_log_to_their_own_files(tmp_path, data_dir, monkeypatch):
    """mmengine reuses logger/visualizer instances by name (<experiment>_<timestamp to the second>):
    two runs of one recipe started within a second must still write their own log files."""
    import time

    from mmengine.runner import Runner

    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now)  # both runners start "within the same second"

    runners = [Runner.from_cfg(prepare(tiny_config(data_dir, tmp_path / f"w{i}"), None, "none")) for i in range(2)]
    names = [r.experiment_name for r in runners]
    assert names[0] != names[1] and all(n.startswith("dstformer-lift") for n in names)
    logs = [Path(r.logger.log_file) for r in runners]
    assert logs[0].parent.parent == tmp_path / "w0" and logs[1].parent.parent == tmp_path / "w1"


TINY_TCN = dict(name="tcn-27f-lift", channels=16, filter_widths=[3, 3], mode="window")


@pytest.mark.slow
def test_validation_reproduces_in_test_tool(tmp_path, data_dir):
    """Issue 16: the TCN's validation during training must give what tools/test.py gives on the same
    checkpoint, at every validation (the second one used stale folded weights), and best/ must hold
    the weights of the best validation."""
    import importlib.util
    import json as _json

    from mmengine.runner import Runner

    cfg = tiny_config(data_dir, tmp_path / "work", **{"model.model": TINY_TCN, "model.input_channels": 2,
                                                      "train_cfg.max_iters": 4, "train_cfg.val_interval": 2,
                                                      "default_hooks.checkpoint.interval": 2,
                                                      "param_scheduler": [], "optim_wrapper.optimizer.lr": 0.05,
                                                      "val_evaluator.errors": ["mpjpe", "p_mpjpe"],
                                                      "test_evaluator.errors": ["mpjpe", "p_mpjpe"]})
    cfg = prepare(cfg, None, "none")  # its own experiment name: a run started in the same second would log elsewhere
    Runner.from_cfg(cfg).train()
    work = Path(cfg.work_dir)
    rows = [_json.loads(line) for p in work.glob("*/vis_data/scalars.json") for line in p.read_text().splitlines()]
    validated = dict(zip((2, 4), [r["pose/mpjpe"] for r in rows if "pose/mpjpe" in r], strict=True))
    assert validated[2] != validated[4]
    config = tmp_path / "tiny_tcn.py"
    cfg.dump(str(config))
    spec = importlib.util.spec_from_file_location("posezoo_test_tool", recipe_dir().parents[1] / "tools" / "test.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    best = min(validated.values())
    for checkpoint, expect in ((work / "iter_4.safetensors", validated[4]),
                               (work / "iter_2.safetensors", validated[2]), (work / "best", best)):
        got = tool.main([str(config), "--checkpoint", str(checkpoint), "--work-dir", str(tmp_path / "test"),
                         "--out", str(tmp_path / "results.json")])
        assert got["metrics"]["pose/mpjpe"]["value"] == pytest.approx(expect, rel=1e-5), checkpoint


def test_max_iters_override_stretches_the_schedule():
    """Issue 16: ``train_cfg.max_iters=1000`` on a 400-iteration recipe annealed at 400 and trained at
    the final lr after; the whole schedule now follows max_iters, keys given by the user excepted."""
    cfg = load_config("tcn-27f-lift-small", {"train_cfg.max_iters": 1000})
    warmup, cosine = cfg.param_scheduler
    assert (warmup.begin, warmup.end) == (0, 125)
    assert (cosine.begin, cosine.end, cosine.T_max) == (125, 1000, 875)
    assert cfg.train_cfg.val_interval == 500 and cfg.default_hooks.checkpoint.interval == 250
    assert cfg.max_iters == 1000
    same = load_config("tcn-27f-lift-small", {"max_iters": 1000, "train_cfg.val_interval": 100})
    assert same.train_cfg.max_iters == 1000 and same.train_cfg.val_interval == 100
    assert same.param_scheduler[1].end == 1000
    kept = load_config("tcn-27f-lift-small", {"train_cfg.max_iters": 40,
                                              "param_scheduler": [dict(type="ConstantLR", by_epoch=False, end=7)]})
    assert kept.param_scheduler[0].end == 7 and kept.train_cfg.val_interval == 20
    assert load_config("tcn-27f-lift-small", {"model.flip_test": False}).param_scheduler[1].end == 400


def test_overridden_data_files_relabel_the_results(tmp_path):
    """Issue 16: the recipe's free-text dataset label must not survive overriding the data files."""
    recipe = load_config("tcn-27f-lift-small")
    assert "held-out clips" in recipe.test_evaluator.dataset
    other = str(tmp_path / "mine.npz")
    cfg = load_config("tcn-27f-lift-small", {"test_dataloader.dataset.files": [other]})
    assert "mine.npz" in cfg.test_evaluator.dataset and "overridden" in cfg.test_evaluator.dataset
    assert cfg.val_evaluator.dataset == recipe.val_evaluator.dataset  # val files unchanged
    named = load_config("tcn-27f-lift-small", {"test_dataloader.dataset.files": [other],
                                               "test_evaluator.dataset": "my clips"})
    assert named.test_evaluator.dataset == "my clips"
