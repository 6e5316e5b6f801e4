# Single 3D poses for pose tokenizers: the shared mocap files (Bandai-Namco 1 + 2, CMU) as H36M-17
# joints, resampled to 30 fps, every 4th frame, root-relative and divided by the training poses'
# median pelvis-thorax distance (posezoo.data.MocapPoseDataset), split by clip. Set POSEZOO_DATA to
# the folder holding the .npz files.
data_root = "{{$POSEZOO_DATA:data}}"
pose_files = [data_root + "/bandai1.npz", data_root + "/bandai2.npz", data_root + "/cmu.npz"]
pose_dataset = dict(type="MocapPoseDataset", files=pose_files, layout_out="h36m-17", fps=30, frame_step=4)
train_dataloader = dict(
    batch_size=512, num_workers=0,
    sampler=dict(type="InfiniteSampler", shuffle=True),
    collate_fn=dict(type="default_collate"),
    dataset=dict(pose_dataset, split="train"),
)
val_dataloader = dict(
    batch_size=1024, num_workers=0,
    sampler=dict(type="DefaultSampler", shuffle=False),
    collate_fn=dict(type="default_collate"),
    dataset=dict(pose_dataset, split="test"),
)
test_dataloader = val_dataloader
