# Martinez et al.'s single-frame MLP (`mlp-lift`) on Human3.6M from VideoPose3D's files, under
# tcn-27f-lift-h36m's recipe (same files, batch, optimiser, schedule, flip): one frame per window, every
# frame of every training video. The floor the temporal H36M recipes must beat at every point of
# the learning curve (tools/lift_curve.py --setting h36m). Validation: one frame every 27 of S9/S11.
_base_ = ["./tcn-27f-lift-h36m.py"]
model = dict(model=dict(_delete_=True, name="mlp-lift", in_features=2))
train_dataloader = dict(dataset=dict(clip_len=1))
val_dataloader = dict(dataset=dict(clip_len=1))
test_dataloader = dict(dataset=dict(clip_len=1))
