# The small setting of tools/codebook_study.py --small under mmengine (minutes on a CPU): Bandai-Namco 1
# only, every 2nd frame, every 5th clip held out; 8 tokens of a 32-code codebook, encoder width 64;
# 200 unquantised + 200 quantised iterations of batch 128, AdamW lr 2e-3, constant, no weight decay.
_base_ = ["./pct-tokenizer.py"]
max_iters = 400
model = dict(
    model=dict(encoder=dict(num_blocks=2, hidden_dim=64, token_inter_dim=32, hidden_inter_dim=64),
               decoder=dict(num_blocks=1, hidden_dim=32, token_inter_dim=32, hidden_inter_dim=32),
               codebook=dict(token_num=8, token_dim=16, token_class_num=32)),
    stage1_iters=200)
pose_dataset = dict(files=["{{$POSEZOO_DATA:data}}/bandai1.npz"], fps=None, frame_step=2, split_rule="index")
train_dataloader = dict(batch_size=128, dataset=pose_dataset)
val_dataloader = dict(dataset=pose_dataset)
test_dataloader = val_dataloader
train_cfg = dict(max_iters=max_iters, val_interval=200)
optim_wrapper = dict(optimizer=dict(lr=2e-3, weight_decay=0.0))
param_scheduler = [dict(type="ConstantLR", factor=1.0, by_epoch=False, begin=0, end=max_iters)]
_dataset = "Bandai-Namco 1 poses (H36M-17, root-relative), every 5th clip held out"
val_evaluator = [
    dict(type="CodebookMetric", num_tokens=32, dataset=_dataset),
    dict(type="PoseErrorMetric", errors=["mpjpe", "p_mpjpe"], prefix="reconstruction", root_joint=None,
         protocols=dict(mpjpe="tokenizer-reconstruction"), dataset=_dataset),
]
test_evaluator = val_evaluator
default_hooks = dict(logger=dict(interval=25), checkpoint=dict(interval=200))
