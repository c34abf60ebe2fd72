# Generated aerial scenes (rsitr_mm.datasets.synthetic), 64 px.
# Create them with: python tools/dataset_converters/generate_synthetic.py \
#     data/synthetic_demo --num-images 2000 --image-size 64
dataset_type = 'SyntheticScenes'
data_root = 'data/synthetic_demo'
ann_file = 'dataset_synthetic.json'

data_preprocessor = dict(
    type='RetrievalDataPreprocessor',
    mean=[127.5, 127.5, 127.5],
    std=[64.0, 64.0, 64.0],
    to_rgb=True)

# No flips or crops: the captions name positions ("in the top left").
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='PackInputs',
        algorithm_keys=['text', 'image_id', 'text_id'],
        meta_keys=['img_path', 'filename']),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='PackInputs',
        algorithm_keys=['text', 'gt_text_id', 'gt_image_id', 'image_id'],
        meta_keys=['img_path', 'filename']),
]

train_dataloader = dict(
    batch_size=64,
    num_workers=0,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file=ann_file,
        data_prefix=dict(img_path='images'),
        split='train',
        pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='rsitr_mm.default_collate'),
    drop_last=True,
)
val_dataloader = dict(
    batch_size=64,
    num_workers=0,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file=ann_file,
        data_prefix=dict(img_path='images'),
        split='val',
        test_mode=True,
        pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='rsitr_mm.default_collate'),
)
test_dataloader = dict(
    batch_size=64,
    num_workers=0,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file=ann_file,
        data_prefix=dict(img_path='images'),
        split='test',
        test_mode=True,
        pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='rsitr_mm.default_collate'),
)
val_evaluator = dict(type='RSRetrievalMetric')
test_evaluator = val_evaluator
