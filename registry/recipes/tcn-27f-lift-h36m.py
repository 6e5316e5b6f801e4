# VideoPose3D's TCN (receptive field 27) on Human3.6M from VideoPose3D's files: POSEZOO_H36M holds
# data_3d_h36m.npz and data_2d_h36m_<POSEZOO_H36M_2D>.npz (default cpn_ft_h36m_dbb; gt, sh_ft_h36m,
# detectron_ft_h36m, ...); cameras from mmpose's cameras.pkl where one lies beside them, else
# Human3.6M's published calibration (VideoPose3D's files carry none). Trained as VideoPose3D trains
# it, sized for a CPU: the single-frame form (mode="window": 27 frames -> the centre frame; every
# frame of every training video a window centre, stride 1), flip augmentation and flip test, batch
# 1024, AdamW lr 1e-3 with a short warm-up and cosine decay, bf16 autocast (BF16OptimWrapper: fast
# where the CPU has avx512_bf16 / AMX; optim_wrapper.type=OptimWrapper elsewhere), 512 channels,
# MPJPE loss. Validation: one window every 27 frames of S9/S11; test (tools/test.py): every frame.
_base_ = ["./_runtime.py", "./_schedule.py", "./_h36m_data.py"]
h36m_root = "{{$POSEZOO_H36M:data/h36m}}"
clip_len = 27
files = dict(type="VideoPose3DH36MDataset", data_3d=h36m_root + "/data_3d_h36m.npz",
             data_2d=h36m_root + "/data_2d_h36m_{{$POSEZOO_H36M_2D:cpn_ft_h36m_dbb}}.npz", clip_len=clip_len)
model = dict(type="LiftTask", model=dict(name="tcn-27f-lift", channels=512, mode="window"), input_channels=2,
             losses=dict(mpjpe=1.0), flip_test=True)
train_dataloader = dict(dataset=dict(files, stride=1))
val_dataloader = dict(dataset=dict(files, stride=clip_len))
test_dataloader = dict(dataset=dict(files, stride=1))
val_evaluator = dict(dataset="Human3.6M protocol 1: S9, S11, all cameras, a window every 27 frames")
test_evaluator = dict(dataset="Human3.6M protocol 1: S9, S11, all cameras, every frame")
max_iters = 3000
train_cfg = dict(max_iters=max_iters, val_interval=500)
optim_wrapper = dict(type="BF16OptimWrapper", optimizer=dict(lr=1e-3, weight_decay=1e-4))
param_scheduler = [
    dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=100),
    dict(type="CosineAnnealingLR", by_epoch=False, begin=100, end=max_iters, T_max=max_iters - 100, eta_min=1e-5),
]
default_hooks = dict(logger=dict(interval=50), checkpoint=dict(interval=500, save_best="pose/mpjpe", rule="less"))
