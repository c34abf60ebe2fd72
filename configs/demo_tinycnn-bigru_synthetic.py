# The `make demo` model: a small CNN + BiGRU dual encoder trained from
# scratch on generated aerial scenes, on the CPU, in a few minutes.
_base_ = [
    './_base_/datasets/synthetic_demo.py',
    './_base_/default_runtime.py',
]

data_root = 'data/synthetic_demo'

model = dict(
    type='DualEncoderRetriever',
    image_encoder=dict(
        type='TinyCNN', base_channels=32, num_stages=4, out_indices=(3, )),
    text_encoder=dict(
        type='BiGRUTextEncoder',
        word_dim=128,
        hidden_dim=256),
    embed_dim=256,
    image_in_channels=256,
    text_in_channels=256,
    losses=[dict(type='MultiPositiveInfoNCELoss')],
    temperature=0.07,
    data_preprocessor={{_base_.data_preprocessor}},
)

optim_wrapper = dict(
    # equal paramwise groups merged: the same updates as mmengine's default
    # constructor, far fewer kernel launches (docs/benchmarks.md)
    constructor='MergedGroupsOptimWrapperConstructor',
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-3, weight_decay=1e-4),
    clip_grad=dict(max_norm=2.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, end=8,
         convert_to_iter_based=True),
]
train_cfg = dict(
    type='ResumableEpochBasedTrainLoop', max_epochs=8, val_interval=2)
val_cfg = dict(type='RSRetrievalValLoop')
test_cfg = dict(type='RSRetrievalTestLoop')

default_hooks = dict(logger=dict(type='LoggerHook', interval=10))
# batch_size (64) is per process; --auto-scale-lr scales lr by
# N x batch_size / 64
auto_scale_lr = dict(base_batch_size=64, enable=False)
env_cfg = dict(cudnn_benchmark=True)  # CNN on fixed-size images
randomness = dict(seed=0, deterministic=False)
