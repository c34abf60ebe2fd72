# Runtime defaults shared by every rsitr_mm config.
default_scope = 'mmpretrain'
custom_imports = dict(imports=['rsitr_mm'], allow_failed_imports=False)

default_hooks = dict(
    # training losses read from the device at logging iterations only (one
    # copy for the whole window instead of one per loss term per step)
    runtime_info=dict(type='DeferredRuntimeInfoHook'),
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # keep the best checkpoint by rsum on the VALIDATION split
    checkpoint=dict(
        type='SafeCheckpointHook',  # writes first, deletes last
        interval=1,
        max_keep_ckpts=2,
        save_best='retrieval/rsum',
        rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
)

custom_hooks = [
    # BiGRU vocabulary and OSFCM object priors from the training dataset the
    # runner builds (the dataset config is the one place paths live); an
    # ann_file named in the model config overrides it
    dict(type='TrainDataToModelHook'),
    # stop on a NaN/Inf loss, naming the iteration and the loss term
    # (action='skip' + optim_wrapper type 'NaNSafeOptimWrapper' skips instead)
    dict(type='NaNGuardHook', action='raise'),
    # average BatchNorm buffers across processes after each epoch (the CPU
    # DDP path does not broadcast buffers)
    dict(type='SyncBuffersHook'),
]

env_cfg = dict(
    # True in the CNN configs (fixed input size): cuDNN picks the fastest
    # convolution algorithms once
    cudnn_benchmark=False,
    # TF32 on Ampere+ GPUs for matmuls and convolutions (tools/train.py):
    # None keeps PyTorch's defaults (matmul off, cuDNN conv on); True/False
    # sets both, e.g. --cfg-options env_cfg.allow_tf32=True
    allow_tf32=None,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='UniversalVisualizer', vis_backends=vis_backends)

log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0, deterministic=False)
