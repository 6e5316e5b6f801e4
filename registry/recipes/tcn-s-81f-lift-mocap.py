# posezoo's default lifter (`tcn-s-81f-lift.mocap`): a VideoPose3D TCN (81 frames, 512 channels, x, y
# and confidence in) trained in its single-frame form on all the open mocap made to look like real
# detections (posezoo.data.SyntheticLiftDataset: Human3.6M joint definitions and proportions, random
# proportions and limbs, cameras all around, some people seated on an unseen chair, MotionBERT's
# detector noise and confidences, dropped, occluded and absent joints, per-frame pose normalisation).
# Every batch is new: 1024 windows a step, generated in one worker process while the model trains in
# bf16. Scored on fixed held-out windows, with detector noise (val) and on clean projections
# (`--cfg-options test_dataloader.dataset.augment.clean=1.0`).
_base_ = ["./_runtime.py", "./_schedule.py", "./_lift_data.py"]
files = [_base_.data_root + "/bandai1.npz", _base_.data_root + "/bandai2.npz", _base_.data_root + "/cmu.npz",
         _base_.data_root + "/deepmimic.npz"]
synthetic = dict(_delete_=True, type="SyntheticLiftDataset", files=files, frames=81, target="centre", fps=30,
                 # Bandai 2 is 88 % of the frames but mostly walking and running: sample the varied
                 # Bandai 1, CMU and DeepMimic more often than their size.
                 file_weights=[0.25, 0.45, 0.22, 0.08])
model = dict(type="LiftTask", model=dict(name="tcn-s-81f-lift", mode="window"), losses=dict(mpjpe=1.0),
             flip_test=True)
train_dataloader = dict(batch_size=1024, num_workers=1, persistent_workers=True, dataset=dict(synthetic, split="train"))
val_dataloader = dict(batch_size=256, dataset=dict(synthetic, split="test", test_windows=2048, seed=1))
test_dataloader = val_dataloader
val_evaluator = dict(errors=["mpjpe", "p_mpjpe", "n_mpjpe"],
                     dataset="Bandai-Namco 1+2, CMU and DeepMimic mocap, held-out clips, H36M skeleton, "
                             "virtual cameras, detector-like 2D")
test_evaluator = val_evaluator
max_iters = 3000
train_cfg = dict(type="IterBasedTrainLoop", max_iters=max_iters, val_interval=500)
optim_wrapper = dict(type="BF16OptimWrapper", optimizer=dict(lr=1e-3, weight_decay=1e-4))
param_scheduler = [
    dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=100),
    dict(type="CosineAnnealingLR", by_epoch=False, begin=100, end=max_iters, T_max=max_iters - 100, eta_min=1e-5),
]
default_hooks = dict(logger=dict(interval=50), checkpoint=dict(interval=250, save_best="pose/mpjpe", rule="less"))
