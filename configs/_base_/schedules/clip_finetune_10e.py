# CLIP fine-tuning: AdamW, small lr, linear warm-up then cosine decay.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=5e-6, weight_decay=0.2,
                   betas=(0.9, 0.98), eps=1e-6),
    paramwise_cfg=dict(
        custom_keys={
            # new (randomly initialised) modules learn faster
            'image_neck': dict(lr_mult=20.0),
            'heads': dict(lr_mult=20.0),
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
