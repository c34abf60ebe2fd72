# SSJDN on SYDNEY: ResNet-50 + BSD, BiGRU, LSD, STL; the era's defaults
# (embed 512, margin 0.2, Adam 2e-4 decayed x0.7 every 20 epochs, batch 100).
# LSD acts through its label losses only (retrieval_mode='full'; 'residual'
# and 'concat' are our opt-in extensions). Provenance of every element
# (paper / our reading / our extension): docs/methods/ssjdn.md.
#   python tools/train.py configs/ssjdn_sydney.py
#   bash tools/dist_train.sh configs/ssjdn_sydney.py 8
_base_ = [
    './_base_/models/ssjdn_r50_bigru.py',
    './_base_/datasets/sydney.py',
    './_base_/schedules/adam_step_50e.py',
    './_base_/default_runtime.py',
]

data_root = 'data/sydney'
num_classes = 7  # scene classes of SYDNEY (see docs/datasets.md)

model = dict(
    heads=[
        dict(
            type='LabelSemanticHead',
            in_channels=512,
            num_classes=num_classes,
            semantic_dim=128,
            retrieval_mode='full'),  # the embedding is left unchanged
    ],
)

train_dataloader = dict(batch_size=100)
# batch_size is per process: N GPUs train on N x 100 pairs per step, each GPU
# mining hardest negatives (STL) in its own 100. --auto-scale-lr scales lr
# by N x batch_size / 100 (docs/distributed.md).
env_cfg = dict(cudnn_benchmark=True)  # CNN on fixed-size crops
# the pretrained ResNet-50 learns at 0.1x the lr of the new layers
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={'image_encoder': dict(lr_mult=0.1)}))
