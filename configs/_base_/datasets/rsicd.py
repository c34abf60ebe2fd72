# RSICD (Lu et al., TGRS 2017): 10921 images of 224x224 jpg, 5 captions each,
# official Karpathy split 8734 / 1094 / 1093 images.
# Layout (see docs/datasets.md):
#   data/rsicd/dataset_rsicd.json        Karpathy json
#   data/rsicd/rsicd_classes/<Class>.txt official per-class filename lists
#                                        (labels the 921 numeric images)
#   data/rsicd/images/*.jpg
dataset_type = 'RSICD'
data_root = 'data/rsicd'
img_scale = 224  # native size

# CLIP statistics in 0-255 BGR->RGB order; override for other backbones.
data_preprocessor = dict(
    type='RetrievalDataPreprocessor',
    mean=[122.770938, 116.7460125, 104.09373615],
    std=[68.5005327, 66.6321579, 70.32316305],
    to_rgb=True,
)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='RandomResizedCrop',
        scale=img_scale,
        crop_ratio_range=(0.5, 1.0),
        interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    # `image_id` is a data field (algorithm key); PackInputs refuses a key
    # that is both an algorithm key and a meta key. `gt_label` is packed
    # automatically.
    dict(
        type='PackInputs',
        algorithm_keys=['text', 'image_id', 'text_id'],
        meta_keys=['img_path', 'filename']),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(img_scale, img_scale), interpolation='bicubic'),
    dict(
        type='PackInputs',
        algorithm_keys=['text', 'gt_text_id', 'gt_image_id', 'image_id'],
        meta_keys=['img_path', 'filename']),
]

dataset_common = dict(
    type=dataset_type,
    data_root=data_root,
    ann_file='dataset_rsicd.json',
    class_map='rsicd_classes',
    data_prefix=dict(img_path='images'),
)

train_dataloader = dict(
    batch_size=32,
    num_workers=4,
    dataset=dict(**dataset_common, split='train', pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True),
    drop_last=True,
    collate_fn=dict(type='rsitr_mm.default_collate'),
)
val_dataloader = dict(
    batch_size=64,
    num_workers=4,
    dataset=dict(
        **dataset_common, split='val', test_mode=True, pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='rsitr_mm.default_collate'),
)
test_dataloader = dict(
    batch_size=64,
    num_workers=4,
    dataset=dict(
        **dataset_common, split='test', test_mode=True,
        pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='rsitr_mm.default_collate'),
)

val_evaluator = dict(type='RSRetrievalMetric')
test_evaluator = val_evaluator
val_cfg = dict(type='RSRetrievalValLoop')
test_cfg = dict(type='RSRetrievalTestLoop')
