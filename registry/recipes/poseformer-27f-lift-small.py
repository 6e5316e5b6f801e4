# PoseFormer (27-frame windows -> centre frame) under the same small CPU recipe as
# dstformer-lift-small: same data, losses, schedule and iterations, a similar parameter count
# (embed_dim_ratio 8, depth 2, 4 heads: 312k vs 280k). PoseFormer takes x, y only
# (input_channels=2) and predicts the centre frame, which LiftTask compares with the target's
# centre frame (so the velocity loss is 0 and MPJVE is undefined). Trains in bf16 as its base: a step
# 1.3x faster than fp32 (1 thread, interleaved; benchmarks/README.md "bf16").
_base_ = ["./dstformer-lift-small.py"]
model = dict(model=dict(_delete_=True, name="poseformer-27f-lift", embed_dim_ratio=8, depth=2, num_heads=4),
             input_channels=2)
val_evaluator = dict(errors=["mpjpe", "p_mpjpe", "n_mpjpe"])
test_evaluator = val_evaluator
