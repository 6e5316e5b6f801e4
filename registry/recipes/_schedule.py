# Iteration-based schedule: AdamW, warm-up then cosine decay, gradient clipping.
max_iters = 20000
train_cfg = dict(type="IterBasedTrainLoop", max_iters=max_iters, val_interval=2000)
val_cfg = dict(type="ValLoop")
test_cfg = dict(type="TestLoop")
optim_wrapper = dict(
    type="OptimWrapper",
    # fused: one kernel updates every parameter (CPU and CUDA, torch >= 2.4); same update as the
    # per-parameter loop within fp32 rounding, a large share of a CPU training step faster
    optimizer=dict(type="AdamW", lr=2e-4, weight_decay=0.01, fused=True),
    clip_grad=dict(max_norm=1.0, norm_type=2),
    # ParamGroupConstructor: lr_mult per name part, no decay for biases/norms when no_decay_1d.
    constructor="ParamGroupConstructor",
    paramwise_cfg=dict(no_decay_1d=False),  # MotionBERT decays every parameter
)
param_scheduler = [
    dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=500),
    dict(type="CosineAnnealingLR", by_epoch=False, begin=500, end=max_iters, T_max=max_iters - 500, eta_min=1e-6),
]
