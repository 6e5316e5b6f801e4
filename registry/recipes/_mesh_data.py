# Mesh-recovery data: your AMASS SMPL(-H/-X) parameter files posed with your SMPL body model and
# seen by random virtual cameras (posezoo.data.AMASSMeshDataset), split by clip. Set POSEZOO_DATA to
# the folder holding amass/ (the AMASS npz tree) and POSEZOO_SMPL to the folder holding
# SMPL_NEUTRAL.pkl (or a plain-array .npz) and J_regressor_h36m_correct.npy (licensed: never shipped).
data_root = "{{$POSEZOO_DATA:data}}"
smpl_root = "{{$POSEZOO_SMPL:data/smpl}}"
amass_files = [data_root + "/amass"]
body_model = smpl_root + "/SMPL_NEUTRAL.pkl"
j_regressor = smpl_root + "/J_regressor_h36m_correct.npy"
mesh_dataset = dict(type="AMASSMeshDataset", files=amass_files, body_model=body_model, j_regressor=j_regressor,
                    clip_len=16, fps=30)
train_dataloader = dict(
    batch_size=128, num_workers=0,
    sampler=dict(type="InfiniteSampler", shuffle=True),
    collate_fn=dict(type="default_collate"),
    dataset=dict(mesh_dataset, split="train", stride=8, seed=0),
)
val_dataloader = dict(
    batch_size=128, num_workers=0,
    sampler=dict(type="DefaultSampler", shuffle=False),
    collate_fn=dict(type="default_collate"),
    dataset=dict(mesh_dataset, split="test", seed=1),
)
test_dataloader = val_dataloader
val_evaluator = dict(type="MeshMetric", dataset="AMASS clips posed with your SMPL model through virtual cameras, "
                                                "held-out clips")
test_evaluator = val_evaluator
