# PCT's 3D pose tokenizer at the official base size (pct-tokenizer-3d: 34 tokens, 2048 codes, encoder
# width 512) with posezoo's staged schedule against codebook collapse (TokenizerTask +
# TokenizerStageHook, the same TokenizerTrainer as posezoo.models.pct.train_tokenizer): stage 1 trains
# encoder + decoder without quantisation for stage1_iters, then the encoder is frozen, the codebook
# seeded from encoder outputs and a re-initialised decoder trained with the EMA codebook (official
# losses: smooth-L1 joints + 15 x commitment), with dead-code restart every 20 iterations.
# Optimiser as configs/pct_base_tokenizer.py: AdamW lr 1e-2, wd 0.15, 500 warm-up iterations, cosine,
# batch 512 (the optimiser state restarts at stage 2).
_base_ = ["./_runtime.py", "./_schedule.py", "./_pose_data.py"]
max_iters = 20000
model = dict(type="TokenizerTask", model=dict(name="pct-tokenizer-3d"), staged=True, stage1_iters=max_iters // 2,
             dead_code_restart=True, restart_every=20, restart_fraction=0.05, seed=0)
train_cfg = dict(max_iters=max_iters, val_interval=2000)
optim_wrapper = dict(_delete_=True, type="OptimWrapper", optimizer=dict(type="AdamW", lr=1e-2, weight_decay=0.15, fused=True))
param_scheduler = [
    dict(type="LinearLR", start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type="CosineAnnealingLR", by_epoch=False, begin=500, end=max_iters, T_max=max_iters - 500, eta_min=0.0),
]
_dataset = "Bandai-Namco 1+2 and CMU mocap poses (H36M-17, root-relative), held-out clips"
val_evaluator = [
    dict(type="CodebookMetric", num_tokens=2048, dataset=_dataset),
    # The decoded pose against the input pose in metres -> mm: no alignment ("tokenizer-reconstruction")
    # and after Procrustes (h36m-p2).
    dict(type="PoseErrorMetric", errors=["mpjpe", "p_mpjpe"], prefix="reconstruction", root_joint=None,
         protocols=dict(mpjpe="tokenizer-reconstruction"), dataset=_dataset),
]
test_evaluator = val_evaluator
# Several processes: the encoder stops receiving gradients when it is frozen at stage 2.
model_wrapper_cfg = dict(type="MMDistributedDataParallel", find_unused_parameters=True)
default_hooks = dict(checkpoint=dict(save_best="reconstruction/mpjpe", rule="less"))
custom_hooks = [
    dict(type="DataCheckHook"),
    dict(type="TokenizerStageHook", seed_poses=16384),
    dict(type="SafetensorsExportHook"),
    dict(type="RichProgressHook"),
]
