# Testbed fine-tuning schedule (docs/demo.md, "Testbed"), shared by
# configs/testbed/*: the CLIP fine-tuning recipe at the testbed's rates.
# The small start is far from converged on the target domain, so the
# backbone fine-tunes at 5e-4 (real CLIP weights: 5e-6) for 3 epochs; the
# new modules keep the 2e-3 they had in the first 1-epoch run (lr_mult 4
# here, not the shipped 20, which would give them 1e-2).
_base_ = ['./clip_finetune_10e.py']
max_epochs = 3

optim_wrapper = dict(
    optimizer=dict(lr=5e-4),
    paramwise_cfg=dict(
        custom_keys={
            'image_neck': dict(lr_mult=4.0, decay_mult=0.0),
            'heads': dict(lr_mult=4.0, decay_mult=0.0),
        }))
# one epoch = 1000 images x 5 captions / batch 64 = 78 iterations:
# 10% linear warm-up, then cosine decay (run_ablation.py --epochs N rescales)
iters_per_epoch = 78
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
         end=iters_per_epoch * max_epochs // 10),
    dict(type='CosineAnnealingLR', by_epoch=False,
         begin=iters_per_epoch * max_epochs // 10,
         end=iters_per_epoch * max_epochs),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict(type='RSRetrievalValLoop')
test_cfg = dict(type='RSRetrievalTestLoop')
