# SSJDN's modules on a CLIP ViT-B/32 dual encoder (RSITMD), our extension
# (not the paper's model, which is configs/ssjdn_rsitmd.py as we read it):
# BSD decouples the patch-token grids of ViT layers 4, 8 and 11 (a ViT has
# one spatial scale, so the "scales" are depths: early layers keep finer
# local detail); LSD's label losses on both embeddings (loss-only,
# retrieval_mode='full'); InfoNCE + STL (AMFMN margin over label + caption
# similarity) at weight 0.5. Start from any CLIP
# directory, e.g. RemoteCLIP/GeoRSCLIP converted with
# tools/model_converters/clip_to_hf.py:
#   python tools/train.py configs/ssjdn-clip_vit-b32_rsitmd.py \
#       --cfg-options model.image_encoder.pretrained=CLIP_DIR \
#       model.text_encoder.pretrained=CLIP_DIR
_base_ = [
    './_base_/models/clip_vit-b32.py',
    './_base_/datasets/rsitmd.py',
    './_base_/schedules/clip_finetune_10e.py',
    './_base_/default_runtime.py',
]
model = dict(
    # layer 11's patch tokens are never trained by CLIP: read 3, 7, 10
    image_encoder=dict(out_indices=(3, 7, 10), hidden_norm=True),
    image_neck=dict(
        type='BidirectionalScaleDecoupling',
        in_channels=[768, 768, 768],
        # the clues are added to CLIP's own 512-d embedding, so the model
        # starts as plain CLIP and every tower parameter keeps its gradient
        main='global',
        out_channels=512,
        channels=256,
        directions=('f2c', 'c2f'),
        fusion='concat'),
    image_proj='identity',
    heads=[
        dict(
            type='LabelSemanticHead',
            in_channels=512,
            num_classes=33,
            semantic_dim=128,
            retrieval_mode='full'),
    ],
    losses=[
        dict(type='MultiPositiveInfoNCELoss', gather_negatives=True),
        dict(
            type='SemanticGuidedTripletLoss',
            margin=0.2,
            semantic='amfmn',
            amfmn_prior='label_text',
            loss_weight=0.5),
    ])
# Every parameter receives gradient (BSD's main path is CLIP's embedding),
# so DDP needs no unused-parameter search (docs/distributed.md).
train_dataloader = dict(batch_size=128)
# batch_size is per process; InfoNCE gathers every process's rows, so N GPUs
# contrast N x 128 pairs per step. --auto-scale-lr scales lr by
# N x batch_size / 128 (docs/distributed.md).
