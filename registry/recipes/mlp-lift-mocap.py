# Martinez et al.'s single-frame MLP (`mlp-lift`) under the default lifter's recipe: the same synthetic
# detector-like mocap, batch, optimiser and schedule as tcn-s-81f-lift-mocap, one frame per window.
# The floor that temporal lifters must beat at every point of the learning curve (tools/lift_curve.py).
_base_ = ["./tcn-s-81f-lift-mocap.py"]
model = dict(model=dict(_delete_=True, name="mlp-lift"))
train_dataloader = dict(dataset=dict(frames=1))
val_dataloader = dict(dataset=dict(frames=1))
test_dataloader = val_dataloader
