# A small DSTformer mesh regressor for a CPU: depth 2, width 64, head hidden 256; 16-frame clips,
# batch 8, 200 iterations; same losses as MotionBERT's mesh recipe, one lr for backbone and head.
# Posing a full-size SMPL model (6890 vertices) forward and backward dominates the time: about 2.5 s
# an iteration on a busy 2-core CPU (measured with a synthetic 6890-vertex model), so ~8 minutes.
_base_ = ["./dstformer-mesh.py"]
model = dict(model=dict(name="dstformer-mesh", dim_feat=64, dim_rep=128, depth=2, num_heads=4, mlp_ratio=2, maxlen=16,
                        hidden_dim=256))
train_dataloader = dict(batch_size=8)
val_dataloader = dict(batch_size=32)
test_dataloader = val_dataloader
max_iters = 200
train_cfg = dict(max_iters=max_iters, val_interval=100)
optim_wrapper = dict(optimizer=dict(lr=1e-3), paramwise_cfg=dict(_delete_=True, no_decay_1d=False))
param_scheduler = [
    dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=20),
    dict(type="CosineAnnealingLR", by_epoch=False, begin=20, end=max_iters, T_max=max_iters - 20, eta_min=1e-5),
]
default_hooks = dict(logger=dict(interval=20), checkpoint=dict(interval=100))
