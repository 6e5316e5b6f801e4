# 2D -> 3D lifting data: the shared mocap files (Bandai-Namco 1 + 2, CMU) projected through random
# virtual cameras (posezoo.data.MocapLiftDataset), split by clip. Set POSEZOO_DATA to the folder
# holding the .npz files.
data_root = "{{$POSEZOO_DATA:data}}"
lift_files = [data_root + "/bandai1.npz", data_root + "/bandai2.npz", data_root + "/cmu.npz"]
lift_dataset = dict(type="MocapLiftDataset", files=lift_files, layout_out="h36m-17", clip_len=243, fps=30)
train_dataloader = dict(
    batch_size=32, num_workers=0,
    sampler=dict(type="InfiniteSampler", shuffle=True),  # DefaultSampler sleeps 2 s per epoch in iter loops
    collate_fn=dict(type="default_collate"),
    dataset=dict(lift_dataset, split="train", seed=0),
)
val_dataloader = dict(
    batch_size=32, num_workers=0,
    sampler=dict(type="DefaultSampler", shuffle=False),
    collate_fn=dict(type="default_collate"),
    dataset=dict(lift_dataset, split="test", seed=1),
)
test_dataloader = val_dataloader
val_evaluator = dict(type="PoseErrorMetric", errors=["mpjpe", "p_mpjpe", "n_mpjpe", "mpjve"],
                     dataset="Bandai-Namco 1+2 and CMU mocap through virtual cameras, held-out clips")
test_evaluator = val_evaluator
