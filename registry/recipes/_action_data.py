# Action recognition on the Bandai-Namco mocap content labels (walk, run, wave, ...), whole clips
# projected by virtual cameras (posezoo.data.ActionClipDataset), split by clip. A smoke test for
# action heads (the labels are easy), not a benchmark. Set POSEZOO_DATA to the .npz folder.
data_root = "{{$POSEZOO_DATA:data}}"
action_dataset = dict(type="ActionClipDataset", files=[data_root + "/bandai2.npz"], label="content",
                      layout_out="h36m-17", clip_len=243, fps=30)
train_dataloader = dict(
    batch_size=32, num_workers=0,
    sampler=dict(type="InfiniteSampler", shuffle=True),
    collate_fn=dict(type="default_collate"),
    dataset=dict(action_dataset, split="train", seed=0),
)
val_dataloader = dict(
    batch_size=32, num_workers=0,
    sampler=dict(type="DefaultSampler", shuffle=False),
    collate_fn=dict(type="default_collate"),
    dataset=dict(action_dataset, split="test", seed=1),
)
test_dataloader = val_dataloader
val_evaluator = dict(type="AccuracyMetric", topk=[1, 5], dataset="Bandai-Namco 2 content labels, held-out clips")
test_evaluator = val_evaluator
