# A small DSTformer lifter that trains on a 2-core CPU in about 10 minutes: 27-frame clips, depth 2,
# width 64. Same losses and weights as MotionBERT's pose3d recipe; the real-data runs of
# docs/training.md. Validation scores one 27-frame window every 243 frames of each held-out clip.
_base_ = ["./dstformer-lift.py"]
clip_len = 27
model = dict(model=dict(name="dstformer-lite-lift", dim_feat=64, dim_rep=128, depth=2, num_heads=4,
                        mlp_ratio=2, maxlen=clip_len), flip_test=True)
train_dataloader = dict(batch_size=16, dataset=dict(clip_len=clip_len, stride=clip_len))
val_dataloader = dict(batch_size=64, dataset=dict(clip_len=clip_len, stride=243))
test_dataloader = val_dataloader
max_iters = 400
train_cfg = dict(max_iters=max_iters, val_interval=200)
optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [
    dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type="CosineAnnealingLR", by_epoch=False, begin=50, end=max_iters, T_max=max_iters - 50, eta_min=1e-5),
]
default_hooks = dict(logger=dict(interval=25), checkpoint=dict(interval=100))
