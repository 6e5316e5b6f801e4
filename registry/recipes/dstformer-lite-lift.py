# MotionBERT-Lite lifting (configs/pose3d/MB_ft_h36m_global_lite.yaml): lr 5e-4, same losses.
_base_ = ["./dstformer-lift.py"]
model = dict(model=dict(name="dstformer-lite-lift"))
optim_wrapper = dict(optimizer=dict(lr=5e-4))
