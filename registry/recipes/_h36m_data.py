# Loaders and scoring for Human3.6M as users hold it, protocol 1 (train S1, S5, S6, S7, S8; test
# S9, S11, all cameras); each recipe names its files (VideoPose3D's npz [+ cameras.pkl], or
# MotionBERT's pickle) under POSEZOO_H36M, or any path through --cfg-options (docs/training.md).
train_dataloader = dict(batch_size=1024, num_workers=0, collate_fn=dict(type="default_collate"),
                        sampler=dict(type="InfiniteSampler", shuffle=True), dataset=dict(split="train"))
val_dataloader = dict(batch_size=1024, num_workers=0, collate_fn=dict(type="default_collate"),
                      sampler=dict(type="DefaultSampler", shuffle=False), dataset=dict(split="test"))
test_dataloader = val_dataloader
val_evaluator = dict(type="PoseErrorMetric", errors=["mpjpe", "p_mpjpe", "n_mpjpe"], average=["frame", "action"],
                     dataset="Human3.6M protocol 1: S9, S11, all cameras")
test_evaluator = val_evaluator
