# VideoPose3D's TCN (receptive field 27) under the same small CPU recipe as dstformer-lift-small:
# same data, losses, schedule and iterations, a similar parameter count (channels 176: 277k vs
# 280k). The TCN takes x, y only (input_channels=2) and trains as VideoPose3D does, in the strided
# single-frame form (mode="window": a 27-frame window -> its centre frame, which LiftTask compares
# with the target's centre frame; velocity loss 0, no MPJVE). posezoo.lift runs the same weights in
# the dilated whole-sequence form. `--cfg-options model.model.mode=sequence` trains seq2seq instead
# (every frame of the edge-padded clip supervised; docs/training.md compares both).
_base_ = ["./dstformer-lift-small.py"]
model = dict(model=dict(_delete_=True, name="tcn-27f-lift", channels=176, mode="window"), input_channels=2)
# fp32, not the base's bf16: a step this small (B=16, 27-frame windows, 176 channels) is 0.9x as fast
# in bf16 (1 thread, interleaved; benchmarks/README.md "bf16").
optim_wrapper = dict(type="OptimWrapper")
val_evaluator = dict(errors=["mpjpe", "p_mpjpe", "n_mpjpe"])
test_evaluator = val_evaluator
