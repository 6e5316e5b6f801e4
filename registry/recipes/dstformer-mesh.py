# MotionBERT mesh recovery (configs/mesh/MB_ft_h36m.yaml): DSTformer + SMPL regression head (hidden
# 1024, dropout 0.1), MeshLoss L1 = 0.5 MPJPE (mm) + 10 velocity + 1000 pose (rotation matrices) +
# 1 shape + 20 theta norm; AdamW wd 0.01, head lr 5e-4, backbone lr 5e-5 (lr_mult 0.1), batch 128,
# 16-frame clips (stride 8), flip test. Finetune from pretrained weights with
# --cfg-options model.init_checkpoint=<file>. The body model goes to the task, not the saved model.
_base_ = ["./_runtime.py", "./_schedule.py", "./_mesh_data.py"]
model = dict(
    type="MeshTask",
    model=dict(name="dstformer-mesh"),
    body_model={{_base_.body_model}},
    j_regressor={{_base_.j_regressor}},
    losses=dict(mpjpe=0.5, velocity=10.0, pose=1000.0, shape=1.0, norm=20.0),
    flip_test=True,
)
optim_wrapper = dict(optimizer=dict(lr=5e-4), paramwise_cfg=dict(lr_mult={"backbone": 0.1}))
default_hooks = dict(checkpoint=dict(save_best="mesh/mpve", rule="less"))
