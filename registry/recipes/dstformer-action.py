# MotionBERT action recognition recipe (configs/action/MB_ft_NTU60_xsub.yaml): cross entropy, AdamW
# wd 0.01, head lr 1e-3 and backbone lr 1e-4 when finetuning (lr_mult 0.1), dropout 0.5 in the head.
# Finetune from pretrained weights with --cfg-options model.init_checkpoint=<file> (a lift checkpoint's
# backbone: load it into a dstformer-action model with posezoo.create first).
_base_ = ["./_runtime.py", "./_schedule.py", "./_action_data.py"]
model = dict(type="ActionTask", model=dict(name="dstformer-action", num_classes=10))
# bf16 autocast (BF16OptimWrapper): a step of dstformer-action-small (B=16, T=27) 2.0x faster than fp32,
# of the full-width backbone 2.8x (1 thread, interleaved; benchmarks/README.md "bf16").
optim_wrapper = dict(type="BF16OptimWrapper", optimizer=dict(lr=1e-3), paramwise_cfg=dict(lr_mult={"backbone": 0.1}))
default_hooks = dict(checkpoint=dict(save_best="action/top1", rule="greater"))
