# MotionBERT-style pretraining of DSTformer: recover the clean 3D motion from 2D corrupted like
# MotionBERT's Augmenter2D (joints dropped with p 0.05, whole frames with p 0.1), with an
# EMA of the weights for evaluation.
_base_ = ["./dstformer-lift.py"]
train_dataloader = dict(dataset=dict(corrupt=dict(mask_ratio=0.05, mask_T_ratio=0.1)))
optim_wrapper = dict(optimizer=dict(lr=5e-4))
custom_hooks = [
    dict(type="DataCheckHook"),
    dict(type="EMAHook", ema_type="ExponentialMovingAverage", momentum=0.001, priority=49),
    dict(type="SafetensorsExportHook"),
    dict(type="RichProgressHook"),
]
