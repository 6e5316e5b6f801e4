"""Datasets on the real shared motion files: item contract, clip-level splits, determinism, and
that the 2D input really is the projection of the 3D target."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from posezoo.data.cameras import project
from posezoo.data.datasets import MocapLiftDataset, clip_split
from posezoo.data.layouts import H36M_17
from posezoo.data.transforms import denormalize_screen_coordinates
from posezoo.registry import DATASETS


@pytest.fixture(scope="module")
def bandai1(data_dir):
    return data_dir / "bandai1.npz"


def test_lift_item_contract_and_collate(bandai1):
    ds = DATASETS.build(dict(type="MocapLiftDataset", files=[str(bandai1)], split="train", seed=1))
    item = ds[0]
    assert set(item) == {"inputs", "target", "meta"}
    assert item["inputs"].shape == (243, 17, 3) and item["inputs"].dtype == torch.float32
    assert item["target"].shape == (243, 17, 3) and item["target"].dtype == torch.float32
    assert torch.all(item["target"][:, 0] == 0)  # root-relative
    assert set(np.unique(item["inputs"][..., 2].numpy())) <= {0.0, 1.0}
    assert all(isinstance(v, (str, int, float, bool)) for v in item["meta"].values())
    batch = default_collate([ds[0], ds[1]])
    assert batch["inputs"].shape == (2, 243, 17, 3) and len(batch["meta"]["clip"]) == 2
    # Metres: a person's 3D extent is about a metre or two, not millimetres or pixels.
    extent = (item["target"].amax(1) - item["target"].amin(1)).norm(dim=-1).median()
    assert 0.5 < float(extent) < 3.0


def test_split_by_clip_no_overlap(bandai1, data_dir):
    train = MocapLiftDataset([bandai1], split="train")
    test = MocapLiftDataset([bandai1], split="test")
    train_clips = {train.files[f].clip_names[c] for f, c in train.clips}
    test_clips = {test.files[f].clip_names[c] for f, c in test.clips}
    assert not train_clips & test_clips
    assert len(train_clips) + len(test_clips) == 174
    assert 0.1 < len(test_clips) / 174 < 0.3
    numbered = MocapLiftDataset([data_dir / "bandai2.npz"], split="test", split_rule="number")
    assert all(int(numbered.files[0].clip_names[c][-3:]) % 5 == 0 for _, c in numbered.clips)
    cmu = MocapLiftDataset([data_dir / "cmu.npz"], split="test", clip_len=27)
    assert {cmu.files[f].clip_names[c].split("_")[0] for f, c in cmu.clips} == {"test"}


def test_clip_split_rules():
    assert clip_split(["train_a_1", "test_b_2"]) == ["train", "test"]
    assert clip_split(["walk_005", "walk_006"], "number") == ["test", "train"]
    assert clip_split(["backflip", "crawl"], "hash") == clip_split(["backflip", "crawl"])
    with pytest.raises(ValueError, match="split_rule"):
        clip_split(["a"], "bogus")
    with pytest.raises(ValueError, match="does not apply"):
        clip_split(["walk"], "number")


def test_test_items_deterministic_and_seeded(bandai1):
    a = MocapLiftDataset([bandai1], split="test", seed=3)
    b = MocapLiftDataset([bandai1], split="test", seed=3)
    c = MocapLiftDataset([bandai1], split="test", seed=4)
    for i in (0, len(a) - 1):
        assert torch.equal(a[i]["inputs"], a[i]["inputs"])
        assert torch.equal(a[i]["inputs"], b[i]["inputs"]) and torch.equal(a[i]["target"], b[i]["target"])
    assert not torch.equal(a[0]["inputs"], c[0]["inputs"])
    assert a[0]["meta"]["flipped"] is False


@pytest.mark.parametrize("distortion", [False, True])
def test_inputs_are_projection_of_target(bandai1, distortion):
    ds = MocapLiftDataset([bandai1], split="test", cameras=dict(distortion=distortion), clip_len=81)
    for index in (0, 7):
        s = ds.sample(index)
        m = s["meta"]
        item = ds[index]
        # camera-frame 3D = root-relative target + root; project with the camera in meta
        points = item["target"].double().numpy() + s["points_cam"][:, :1]
        px = project(points, [m["fx"], m["fy"]], [m["cx"], m["cy"]], [m["k1"], m["k2"], m["k3"]], [m["p1"], m["p2"]])
        seen = item["inputs"][..., 2].numpy() > 0
        assert seen.mean() > 0.9
        got = denormalize_screen_coordinates(item["inputs"].double().numpy(), m["width"], m["height"])[..., :2]
        np.testing.assert_allclose(got[seen], px[seen], atol=1e-3)  # float32 rounding of inputs
        assert (m["k1"] != 0) == distortion


def test_head_projects_above_feet(bandai1):
    ds = MocapLiftDataset([bandai1], split="test", cameras=dict(elevation=(0.0, 10.0)))
    head, feet = H36M_17.index("head"), [H36M_17.index("left_ankle"), H36M_17.index("right_ankle")]
    checked = 0
    for index in range(0, len(ds), 9):
        inputs = ds[index]["inputs"]
        seen = inputs[:, [head] + feet, 2].min(-1).values > 0  # frames with head and feet in the image
        y = inputs[seen][..., 1]
        assert torch.all(y[:, head] < y[:, feet].min(-1).values)  # image y points down
        checked += int(seen.sum())
        # and in 3D: camera y points down too
        t = ds[index]["target"]
        assert torch.all(t[:, head, 1] < t[:, feet, 1].min(-1).values)
    assert checked > 1000


def test_flip_swaps_input_and_target_together(bandai1):
    ds = MocapLiftDataset([bandai1], split="test", flip=True, clip_len=27)
    flipped = [i for i in range(len(ds)) if ds[i]["meta"]["flipped"]][:1]
    assert flipped
    s, item = ds.sample(flipped[0]), ds[flipped[0]]
    np.testing.assert_array_equal(item["inputs"].numpy(), H36M_17.flip(s["inputs"]))
    np.testing.assert_array_equal(item["target"].numpy(), H36M_17.flip(s["target"]))


def test_short_clips_resampled_and_corruption(data_dir):
    ds = MocapLiftDataset([data_dir / "deepmimic.npz"], split="train", clip_len=243, seed=0,
                          corrupt=dict(mask_ratio=0.05, mask_T_ratio=0.1))
    assert all(ds.clip_length(f, c) < 243 for f, c in ds.clips)
    assert len(ds) == len(ds.clips) and all(ds.items[:, 2] == -1)
    zeros = np.mean([(ds[i]["inputs"][..., 2] == 0).float().mean().item() for i in range(len(ds))])
    assert 0.08 < zeros < 0.25  # 1 - 0.95 * 0.9 = 14.5 % masked


def test_fps_resampling(data_dir):
    native = MocapLiftDataset([data_dir / "cmu.npz"], split="test", clip_len=27)
    at30 = MocapLiftDataset([data_dir / "cmu.npz"], split="test", clip_len=27, fps=30)
    f, c = native.clips[0]
    assert abs(at30.clip_length(f, c) - native.clip_length(f, c) / 4) <= 1
    np.testing.assert_allclose(at30.clip_array(f, c)[1], native.clip_array(f, c)[4], atol=1e-6)
    assert at30[0]["meta"]["fps"] == 30.0


def test_bad_inputs(tmp_path, data_dir):
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        MocapLiftDataset([tmp_path / "nope.npz"])
    with pytest.raises(ValueError, match="2D detections"):
        MocapLiftDataset([data_dir / "treadmill_openpose.npz"])
    with pytest.raises(ValueError, match="unknown camera settings"):
        MocapLiftDataset([data_dir / "deepmimic.npz"], cameras=dict(fov=3))


def test_action_clip_dataset(data_dir):
    from posezoo.data.datasets import ActionClipDataset

    train = DATASETS.build(dict(type="ActionClipDataset", files=[str(data_dir / "bandai1.npz")],
                                label="content", clip_len=64, split="train"))
    test = ActionClipDataset([data_dir / "bandai1.npz"], label="content", clip_len=64, split="test")
    assert len(train) + len(test) == 174 and len(train.classes) == 16 and train.classes == test.classes
    assert not {train.files[0].clip_names[c] for _, c in train.clips} & {test.files[0].clip_names[c] for _, c in test.clips}
    item = test[0]
    assert item["inputs"].shape == (1, 64, 17, 3) and item["inputs"].dtype == torch.float32
    assert isinstance(item["label"], int) and test.classes[item["label"]] == item["meta"]["label_name"]
    assert item["meta"]["label_name"] in item["meta"]["clip"]  # Bandai names carry the content
    assert torch.equal(test[0]["inputs"], item["inputs"])
    batch = default_collate([test[0], test[1]])
    assert batch["inputs"].shape == (2, 1, 64, 17, 3) and batch["label"].dtype == torch.int64
    cropped = ActionClipDataset([data_dir / "bandai1.npz"], clip_len=64, split="test", normalise="crop_scale")
    xy = cropped[0]["inputs"][..., :2]
    assert float(xy.abs().max()) <= 0.5 + 1e-6  # scale_range [2, 2] for test: box inside [-0.5, 0.5]
    with pytest.raises(ValueError, match="label 'mood'.*content"):
        ActionClipDataset([data_dir / "bandai1.npz"], label="mood")


def test_metainfo_and_training_randomness(data_dir):
    ds = MocapLiftDataset([data_dir / "bandai1.npz"], split="train", clip_len=27)
    info = ds.metainfo
    assert info["layout"] == "h36m-17" and info["joints"] == H36M_17.joints
    assert info["sources"][0]["license"] == "CC BY-NC 4.0"
    np.random.seed(0)
    torch.manual_seed(0)
    first = ds[5]["inputs"]
    again = ds[5]["inputs"]
    assert not torch.equal(first, again)  # a new camera every time a training item is drawn
    np.random.seed(0)
    torch.manual_seed(0)
    assert torch.equal(ds[5]["inputs"], first)  # ...and repeatable under the global seeds


def test_mmengine_dataloader_from_config(data_dir):
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner

    with DefaultScope.overwrite_default_scope("posezoo"):
        loader = Runner.build_dataloader(dict(
            dataset=dict(type="MocapLiftDataset", files=[str(data_dir / "deepmimic.npz")], clip_len=27),
            sampler=dict(type="DefaultSampler", shuffle=True), batch_size=4, num_workers=0,
            collate_fn=dict(type="default_collate")), seed=0)
    batch = next(iter(loader))
    assert batch["inputs"].shape == (4, 27, 17, 3) and batch["target"].shape == (4, 27, 17, 3)
    assert len(batch["meta"]["clip"]) == 4
