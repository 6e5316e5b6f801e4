# A small DSTformer + action head trained from scratch on a 2-core CPU in minutes (docs/training.md):
# whole clips resampled to 27 frames, depth 2, width 64, classifier hidden 256; one lr for backbone and head.
_base_ = ["./dstformer-action.py"]
clip_len = 27
model = dict(model=dict(name="dstformer-lite-action", num_classes=10, dim_feat=64, dim_rep=128, depth=2,
                        num_heads=4, mlp_ratio=2, maxlen=clip_len, hidden_dim=256))
train_dataloader = dict(batch_size=16, dataset=dict(clip_len=clip_len))
val_dataloader = dict(batch_size=64, dataset=dict(clip_len=clip_len))
test_dataloader = val_dataloader
max_iters = 200
train_cfg = dict(max_iters=max_iters, val_interval=100)
optim_wrapper = dict(optimizer=dict(lr=1e-3), paramwise_cfg=dict(_delete_=True, no_decay_1d=False))
param_scheduler = [
    dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=20),
    dict(type="CosineAnnealingLR", by_epoch=False, begin=20, end=max_iters, T_max=max_iters - 20, eta_min=1e-5),
]
default_hooks = dict(logger=dict(interval=20), checkpoint=dict(interval=100))
