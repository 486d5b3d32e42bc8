# Runtime shared by every mmsakd config.
default_scope = 'mmsakd'
# importing mmsakd applies its compatibility layer and registers its modules
custom_imports = dict(imports=['mmsakd'], allow_failed_imports=False)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='CheckpointHook', interval=10, max_keep_ckpts=3,
        save_best='auto'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
)
# RNGStateHook puts the data-augmentation / dropout / Gumbel random generators
# into checkpoints so that a resumed run continues exactly like an
# uninterrupted one; SpotStatisticsHook reports where spot-adaptive models
# distilled (it does nothing for other models); CRDMemorySyncHook gives every
# distributed rank the same CRD memory bank (it does nothing in one process);
# CheckEpochLengthHook refuses a train dataloader that yields no batch and
# CheckFiniteLossHook stops at the first NaN/inf loss (naming it) without
# saving non-finite weights
custom_hooks = [
    dict(type='mmsakd.CheckEpochLengthHook'),
    dict(type='mmsakd.CheckFiniteLossHook'),
    dict(type='mmsakd.RNGStateHook'),
    dict(type='mmsakd.SpotStatisticsHook', interval=50),
    dict(type='mmsakd.CRDMemorySyncHook'),
]

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # on machines without CUDA mmsakd falls back to gloo (with a warning);
    # timeout (seconds): how long a collective waits for a stalled rank before
    # the job fails (torch's default is 30 min). Raise it for steps that keep
    # ranks apart longer, e.g. --cfg-options env_cfg.dist_cfg.timeout=1800
    dist_cfg=dict(backend='nccl', timeout=600),
)

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends)

log_processor = dict(by_epoch=True)
log_level = 'INFO'
load_from = None
resume = False
# the SAKD reference code seeds every run with 1029
randomness = dict(seed=1029, deterministic=False)
