# A small DSTformer (dstformer-lift-small's: 27 frames, depth 2, width 64) on Human3.6M from
# MotionBERT's pickle (POSEZOO_H36M/h36m_sh_conf_cam_source_final.pkl: SH 2D with confidence, 2.5D
# targets in metres), sized for a CPU: 27-frame clips every 9 frames, batch 16 (a step of 16 clips
# costs a ninth of one of 128 on 2 cores and teaches nearly as much: more steps per minute), AdamW lr
# 1e-3 with a short warm-up and cosine decay, bf16 autocast, MPJPE + 0.5 N-MPJPE + 1 velocity
# (MotionBERT's velocity weight of 20 drags short CPU schedules to a static pose), flip test.
# Validation: one clip every 243 frames of S9/S11; test (tools/test.py): every 27-frame clip.
_base_ = ["./_runtime.py", "./_schedule.py", "./_h36m_data.py"]
h36m_root = "{{$POSEZOO_H36M:data/h36m}}"
clip_len = 27
files = dict(type="MotionBERTH36MDataset", file=h36m_root + "/h36m_sh_conf_cam_source_final.pkl", clip_len=clip_len)
model = dict(type="LiftTask", model=dict(name="dstformer-lite-lift", dim_feat=64, dim_rep=128, depth=2, num_heads=4,
                                         mlp_ratio=2, maxlen=clip_len),
             losses=dict(mpjpe=1.0, n_mpjpe=0.5, velocity=1.0), flip_test=True)
train_dataloader = dict(batch_size=16, dataset=dict(files, stride=9))
val_dataloader = dict(batch_size=128, dataset=dict(files, stride=243))
test_dataloader = dict(batch_size=128, dataset=dict(files, stride=clip_len))
val_evaluator = dict(errors=["mpjpe", "p_mpjpe", "n_mpjpe", "mpjve"],
                     dataset="Human3.6M protocol 1: S9, S11, all cameras, a 27-frame clip every 243 frames")
test_evaluator = dict(val_evaluator, dataset="Human3.6M protocol 1: S9, S11, all cameras, every 27-frame clip")
max_iters = 6000
train_cfg = dict(max_iters=max_iters, val_interval=1000)
optim_wrapper = dict(type="BF16OptimWrapper", optimizer=dict(lr=1e-3))
param_scheduler = [
    dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=200),
    dict(type="CosineAnnealingLR", by_epoch=False, begin=200, end=max_iters, T_max=max_iters - 200, eta_min=1e-5),
]
default_hooks = dict(logger=dict(interval=50), checkpoint=dict(interval=1000, save_best="pose/mpjpe", rule="less"))
