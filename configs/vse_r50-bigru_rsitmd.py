# VSE++ baseline on RSITMD: ResNet-50 (pooled last stage) + BiGRU, hardest-
# negative triplet loss (margin 0.2), Adam 2e-4 decayed x0.7 / 20 epochs.
# Starts from mmpretrain's ImageNet checkpoint (URL below, downloaded and
# cached by mmengine; pass a local file with
#   --cfg-options model.image_encoder.init_cfg.checkpoint=PATH), or from
# scratch with --cfg-options model.image_encoder.init_cfg=None
_base_ = [
    './_base_/datasets/rsitmd.py',
    './_base_/schedules/adam_step_50e.py',
    './_base_/default_runtime.py',
]
data_root = 'data/rsitmd'
resnet50_checkpoint = (
    'https://download.openmmlab.com/mmclassification/v0/resnet/re'
    'snet50_8xb32_in1k_20210831-ea4938fc.pth')

model = dict(
    type='DualEncoderRetriever',
    image_encoder=dict(
        type='ResNet',
        depth=50,
        out_indices=(3, ),
        init_cfg=dict(
            type='Pretrained',
            checkpoint=resnet50_checkpoint,
            prefix='backbone.')),
    text_encoder=dict(
        type='BiGRUTextEncoder',
        word_dim=300,
        hidden_dim=512),
    embed_dim=512,
    image_in_channels=2048,
    text_in_channels=512,
    losses=[dict(type='TripletRankingLoss', margin=0.2, max_violation=True)],
    data_preprocessor=dict(
        type='RetrievalDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
)
train_dataloader = dict(batch_size=100)
# batch_size is per process: N GPUs train on N x 100 pairs per step, each GPU
# mining hardest negatives in its own 100. The 1-GPU recipe on N GPUs:
#   --cfg-options train_dataloader.batch_size=<100/N>
#   model.losses.0.gather_negatives=True
# --auto-scale-lr scales lr by N x batch_size / 100 (docs/distributed.md).
env_cfg = dict(cudnn_benchmark=True)  # CNN on fixed-size crops
