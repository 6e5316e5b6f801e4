# Finetuning a pretrained DSTformer for lifting: the backbone learns 10x slower than the head,
# biases and norm weights are not decayed. Pass the weights with
# --cfg-options model.init_checkpoint=<MotionBERT best_epoch.bin or posezoo .safetensors>.
_base_ = ["./dstformer-lift.py"]
optim_wrapper = dict(paramwise_cfg=dict(lr_mult={"backbone": 0.1}, no_decay_1d=True))
