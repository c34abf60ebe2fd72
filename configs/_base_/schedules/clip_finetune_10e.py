# CLIP fine-tuning: AdamW, small lr, linear warm-up then cosine decay.
optim_wrapper = dict(
    # equal paramwise groups merged: the same updates as mmengine's default
    # constructor, far fewer kernel launches (docs/benchmarks.md)
    constructor='MergedGroupsOptimWrapperConstructor',
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=5e-6, weight_decay=0.2,
                   betas=(0.9, 0.98), eps=1e-6),
    paramwise_cfg=dict(
        # no decay on norms, biases and other 1-d parameters (CLIP's own
        # recipe); the new modules get none at all (their gates are fixed,
        # their zero-initialised projections must be free to grow)
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        flat_decay_mult=0.0,
        custom_keys={
            # new modules learn at 20x the backbone lr (1e-4)
            'image_neck': dict(lr_mult=20.0, decay_mult=0.0),
            'heads': dict(lr_mult=20.0, decay_mult=0.0),
            'logit_scale': dict(decay_mult=0.0),
        }),
    clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, end=10,
         convert_to_iter_based=True),
]
train_cfg = dict(
    type='ResumableEpochBasedTrainLoop', max_epochs=10, val_interval=1)
auto_scale_lr = dict(base_batch_size=128, enable=False)
