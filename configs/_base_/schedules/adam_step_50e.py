# The schedule of the CNN + GRU era (AMFMN/GaLR/SWAN code bases):
# Adam 2e-4, decayed x0.7 every 20 epochs.
optim_wrapper = dict(
    # equal paramwise groups merged: the same updates as mmengine's default
    # constructor, far fewer kernel launches (docs/benchmarks.md)
    constructor='MergedGroupsOptimWrapperConstructor',
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=2e-4, weight_decay=0.0),
    clip_grad=dict(max_norm=2.0))
param_scheduler = [
    dict(type='StepLR', by_epoch=True, step_size=20, gamma=0.7),
]
train_cfg = dict(
    type='ResumableEpochBasedTrainLoop', max_epochs=50, val_interval=1)
auto_scale_lr = dict(base_batch_size=100, enable=False)
