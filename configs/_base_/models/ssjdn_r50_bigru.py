# SSJDN (Zheng et al., ACM TOMM 2024): ResNet-50 multi-scale features ->
# Bidirectional Scale Decoupling (BSD) -> 512-d embedding; BiGRU text
# encoder; Label-supervised Semantic Decoupling (LSD) head on both
# modalities; Semantic-guided Triplet Loss (STL). Our reading of the paper:
# see docs/methods/ssjdn.md. Dataset configs set `num_classes`; the BiGRU
# vocabulary is built from the training dataset's captions
# (TrainDataToModelHook) or comes with a checkpoint.
#
# ImageNet weights: mmpretrain's published resnet50_8xb32_in1k checkpoint (the
# URL of mmpretrain's resnet metafile; mmengine downloads and caches it). On a
# machine without network, download it elsewhere and pass
#   --cfg-options model.image_encoder.init_cfg.checkpoint=PATH
# (set model.image_encoder.init_cfg=None to train from scratch).
resnet50_checkpoint = (
    'https://download.openmmlab.com/mmclassification/v0/resnet/re'
    'snet50_8xb32_in1k_20210831-ea4938fc.pth')

model = dict(
    type='DualEncoderRetriever',
    image_encoder=dict(
        type='ResNet',
        depth=50,
        out_indices=(1, 2, 3),
        norm_eval=False,
        init_cfg=dict(
            type='Pretrained',
            checkpoint=resnet50_checkpoint,
            prefix='backbone.')),
    image_neck=dict(
        type='BidirectionalScaleDecoupling',
        in_channels=[512, 1024, 2048],
        # output = pooled stage 4 (2048-d, the no-BSD feature) + the clues
        # through a zero-initialised projection: the main path is our
        # extension, on with its evidence (docs/methods/ssjdn.md)
        channels=256,
        salience='conv',
        salience_bias=-3.0,
        suppression='soft',
        suppress_strength=1.0,
        directions=('f2c', 'c2f'),
        fusion='concat'),
    text_encoder=dict(
        type='BiGRUTextEncoder',
        word_dim=300,
        hidden_dim=512),
    embed_dim=512,
    image_in_channels=2048,
    text_in_channels=512,
    heads=[
        dict(
            type='LabelSemanticHead',
            in_channels=512,
            num_classes=-1,  # set by the dataset config
            semantic_dim=128,
            # the labels supervise both branches through the head's losses;
            # the embedding is left unchanged ('residual' / 'concat' are our
            # opt-in extensions, docs/methods/ssjdn.md)
            retrieval_mode='full',
            cls_scale=16.0,  # cosine classifier
            loss_weight_image=0.1,
            loss_weight_text=0.1),
    ],
    losses=[
        dict(
            type='SemanticGuidedTripletLoss',
            margin=0.2,
            max_violation=True,
            # AMFMN's dynamic margin over label + caption similarity
            semantic='amfmn',
            amfmn_prior='label_text',
            # our extension, on with its evidence (docs/methods/ssjdn.md):
            # sum over negatives for 300 updates, then the hardest
            warmup_iters=300),
    ],
    data_preprocessor=dict(
        type='RetrievalDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
)
