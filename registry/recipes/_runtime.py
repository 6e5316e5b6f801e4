# Runtime shared by every posezoo recipe: mmengine hooks, logging, seeds, CPU/GPU environment.
default_scope = "posezoo"
default_hooks = dict(
    timer=dict(type="IterTimerHook"),
    logger=dict(type="LoggerHook", interval=50),
    param_scheduler=dict(type="ParamSchedulerHook"),
    checkpoint=dict(type="CheckpointHook", by_epoch=False, interval=500, max_keep_ckpts=2),
    sampler_seed=dict(type="DistSamplerSeedHook"),
)
# DataCheckHook: data vs model before training; SafetensorsExportHook: iter_N.safetensors and the
# last/ and best/ folders (posezoo.save format); RichProgressHook: progress bars;
# LearningCurveHook: each validation's metrics vs training time in curve.csv.
custom_hooks = [
    dict(type="DataCheckHook"),
    dict(type="SafetensorsExportHook"),
    dict(type="RichProgressHook"),
    dict(type="LearningCurveHook"),
]
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method="fork", opencv_num_threads=0),
               dist_cfg=dict(backend="gloo"))
log_processor = dict(by_epoch=False, window_size=20)
visualizer = dict(type="Visualizer", vis_backends=[dict(type="LocalVisBackend")])
log_level = "INFO"
load_from = None
resume = False
randomness = dict(seed=0)
