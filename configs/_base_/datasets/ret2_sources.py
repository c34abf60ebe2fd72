# Training sources of the multi-dataset (RET-2 / RET-3) recipes, for
# LeakageSafeConcatDataset. Only new variable names are defined here, so
# this file composes with a dataset/model config in `_base_`. Paths sit
# under data/ (the top config sets `data_root = 'data'`, so
# `--cfg-options data_root=DIR` moves all of them).
rsicd_train = dict(
    type='RSICD',
    data_root='data/rsicd',
    ann_file='dataset_rsicd.json',
    class_map='rsicd_classes',
    data_prefix=dict(img_path='images'),
    split='train')
rsitmd_train = dict(
    type='RSITMD',
    data_root='data/rsitmd',
    ann_file='dataset_rsitmd.json',
    data_prefix=dict(img_path='images'),
    split='train')
ucm_train = dict(
    type='UCMCaptions',
    data_root='data/ucm',
    ann_file='dataset.json',
    data_prefix=dict(img_path='images'),
    split='train')
# The evaluated test splits: no training image may leak into them.
rsicd_test_split = dict(ann_file='data/rsicd/dataset_rsicd.json', split='test')
rsitmd_test_split = dict(
    ann_file='data/rsitmd/dataset_rsitmd.json', split='test')
ucm_test_split = dict(ann_file='data/ucm/dataset.json', split='test')
