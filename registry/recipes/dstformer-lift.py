# MotionBERT DSTformer lifting, MotionBERT's pose3d finetune recipe (configs/pose3d/MB_ft_h36m.yaml):
# loss = MPJPE + 0.5 N-MPJPE + 20 velocity, AdamW lr 2e-4 / wd 0.01, batch 32, flip test, 243 frames.
# Finetune from pretrained weights with --cfg-options model.init_checkpoint=<file>.
_base_ = ["./_runtime.py", "./_schedule.py", "./_lift_data.py"]
model = dict(
    type="LiftTask",
    model=dict(name="dstformer-lift"),
    losses=dict(mpjpe=1.0, n_mpjpe=0.5, velocity=20.0),
    flip_test=True,
)
default_hooks = dict(checkpoint=dict(save_best="pose/mpjpe", rule="less"))
# bf16 autocast, fp32 master weights (BF16OptimWrapper; fp32 with a warning on CPUs without bf16): one
# training step (fwd, loss, bwd, fused AdamW) 2.8x faster than fp32 at this width (512, T=243, B=1, depth 2)
# and 2.0x for dstformer-lift-small (B=16, T=27): 1 thread, interleaved, benchmarks/README.md "bf16".
optim_wrapper = dict(type="BF16OptimWrapper")
