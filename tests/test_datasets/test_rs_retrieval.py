# Copyright (c) rsitr_mm contributors. All rights reserved.
import json
from pathlib import Path

import pytest
import torch
from mmpretrain.registry import DATASETS

import rsitr_mm.datasets.rs_retrieval as rs_retrieval
from rsitr_mm.datasets import (RSICD, RSITMD, RSRetrievalDataset,
                               SydneyCaptions, SyntheticScenes, UCMCaptions)
from rsitr_mm.datasets.label_sources import (filename_prefix_label,
                                             normalize_class_name)

DATA = Path(__file__).resolve().parents[2].parent / 'shared' / 'data'
ANN = DATA / 'annotations'
RSICD_JSON = ANN / 'rsicd' / 'dataset_rsicd_reconstructed.json'
RSITMD_JSON = ANN / 'rsitmd' / 'dataset_rsitmd_reconstructed.json'
UCM_JSON = ANN / 'ucm_captions' / 'dataset.json'
SYDNEY_JSON = ANN / 'sydney_captions' / 'dataset_modified.json'
RSICD_CLASSES = ANN / 'rsicd_classes'
RSICD_SAMPLE = DATA / 'rsicd_sample'


def needs(*paths):
    return pytest.mark.skipif(
        not all(p.exists() for p in paths), reason='shared data absent')


def write_json(path, images):
    path.write_text(json.dumps(dict(images=images)))
    return str(path)


def make_image(filename, split='train', n=5, cls=None):
    img = dict(
        filename=filename,
        split=split,
        sentences=[dict(raw=f'{filename} caption {j} .') for j in range(n)])
    if cls is not None:
        img['class'] = cls
    return img


# --------------------------------------------------------------- real data
@needs(RSICD_JSON, RSITMD_JSON, UCM_JSON, SYDNEY_JSON)
@pytest.mark.parametrize('cls,ann,counts', [
    (RSICD, RSICD_JSON, (8734, 1094, 1093)),
    (RSITMD, RSITMD_JSON, (3435, 856, 452)),
    (UCMCaptions, UCM_JSON, (1680, 210, 210)),
    (SydneyCaptions, SYDNEY_JSON, (497, 58, 58)),
])
def test_real_split_counts(cls, ann, counts):
    raw = json.loads(ann.read_text())['images']
    classes = None
    for split, n_img in zip(('train', 'val', 'test'), counts):
        test = cls(str(ann), split=split, test_mode=True)
        assert len(test) == test.img_size == n_img
        assert test.text_size == 5 * n_img
        for k in (0, n_img - 1):
            item = test[k]
            assert item['image_id'] == k
            assert item['gt_text_id'] == list(range(5 * k, 5 * k + 5))
            assert item['gt_image_id'] == [k] * 5
            assert len(item['text']) == 5
        # captions and filenames follow the json order of the split
        selected = [im for im in raw if im['split'] == split]
        last = test.get_data_info(n_img - 1)
        assert last['filename'] == selected[-1]['filename']
        assert last['text'] == [s['raw'] for s in selected[-1]['sentences']]
        if classes is None:
            classes = test.metainfo['classes']
        assert test.metainfo['classes'] == classes  # same for every split
        assert list(classes) == sorted(classes)
    train = cls(str(ann), split='train')
    assert len(train) == train.text_size == 5 * counts[0]
    assert [train[i]['text_id'] for i in range(7)] == list(range(7))
    assert [train[i]['image_id'] for i in range(7)] == [0] * 5 + [1] * 2


@needs(UCM_JSON)
def test_real_ucm_labels():
    ds = UCMCaptions(
        str(UCM_JSON), split=['train', 'val', 'test'], test_mode=True)
    classes = ds.metainfo['classes']
    assert len(classes) == 21
    by_name = {ds[i]['filename']: ds[i]['gt_label'] for i in range(len(ds))}
    assert classes[by_name['1.tif']] == 'agricultural'
    assert classes[by_name['101.tif']] == 'airplane'
    assert classes[by_name['2100.tif']] == 'tenniscourt'
    for name, label in by_name.items():
        assert label == (int(name.split('.')[0]) - 1) // 100


@needs(RSICD_JSON, RSICD_CLASSES)
def test_real_rsicd_class_map_labels_every_image(tmp_path):
    data = json.loads(RSICD_JSON.read_text())
    json_class = {}
    for img in data['images']:
        json_class[img['filename']] = img.pop('class')
    ann = tmp_path / 'dataset_rsicd.json'
    ann.write_text(json.dumps(data))
    ds = RSICD(
        str(ann),
        split=['train', 'val', 'test'],
        test_mode=True,
        class_map=str(RSICD_CLASSES))
    classes = ds.metainfo['classes']
    assert len(ds) == 10921
    assert len(classes) == len(list(RSICD_CLASSES.glob('*.txt')))
    listed = {}
    for f in RSICD_CLASSES.glob('*.txt'):
        for line in f.read_text().split():
            listed[line] = normalize_class_name(f.stem)
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        assert info['gt_label'] >= 0
        name = classes[info['gt_label']]
        assert name == listed[info['filename']]
        assert name == normalize_class_name(json_class[info['filename']])
        prefix = filename_prefix_label(info['filename'])
        assert prefix is None or prefix == name


@needs(RSICD_JSON)
def test_real_json_class_field_and_split_merge():
    ds = RSICD(str(RSICD_JSON), split='test', test_mode=True)
    raw = [
        im for im in json.loads(RSICD_JSON.read_text())['images']
        if im['split'] == 'test'
    ]
    classes = ds.metainfo['classes']
    for k in range(0, len(ds), 97):
        assert classes[ds.get_data_info(k)['gt_label']] == \
            normalize_class_name(raw[k]['class'])


@needs(RSITMD_JSON)
def test_real_rsitmd_train_val_merge():
    ds = RSITMD(str(RSITMD_JSON), split=['train', 'val'], test_mode=True)
    assert ds.img_size == 3435 + 856
    assert [ds[k]['image_id'] for k in range(len(ds))] == list(range(len(ds)))


@needs(RSICD_SAMPLE)
def test_one_warning_with_count(monkeypatch):
    calls = []
    monkeypatch.setattr(rs_retrieval, 'print_log',
                        lambda msg, **kw: calls.append((msg, kw)))
    ds = RSICD(
        str(RSICD_SAMPLE / 'dataset_rsicd_sample.json'),
        split='train',
        test_mode=True)
    n_missing = sum(ds[i]['gt_label'] == -1 for i in range(len(ds)))
    n_numeric = sum(ds[i]['filename'][0].isdigit() for i in range(len(ds)))
    assert n_missing == n_numeric > 0
    assert len(calls) == 1
    msg, kw = calls[0]
    assert msg.startswith(f'{n_missing} of {len(ds)} images')
    assert kw['level'] == 30  # logging.WARNING
    # with the class lists every image is labelled and nothing is logged
    if RSICD_CLASSES.is_dir():
        calls.clear()
        RSICD(
            str(RSICD_SAMPLE / 'dataset_rsicd_sample.json'),
            class_map=str(RSICD_CLASSES))
        assert calls == []


@needs(RSICD_SAMPLE)
def test_pipeline_real_image():
    train_pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='RandomResizedCrop', scale=32),
        dict(type='RandomFlip', prob=0.5, direction='horizontal'),
        dict(
            type='PackInputs',
            algorithm_keys=['text', 'image_id', 'text_id'],
            meta_keys=['img_path', 'filename'])
    ]
    ds = DATASETS.build(
        dict(
            type='RSICD',
            data_root=str(RSICD_SAMPLE),
            ann_file='dataset_rsicd_sample.json',
            data_prefix=dict(img_path='images'),
            pipeline=train_pipeline,
            check_images=True))
    out = ds[7]
    info = ds.get_data_info(7)
    assert out['inputs'].shape == (3, 32, 32)
    assert out['inputs'].dtype == torch.uint8
    sample = out['data_samples']
    assert sample.text == info['text']
    assert sample.image_id == info['image_id'] == 1
    assert sample.text_id == 7
    assert sample.gt_label.tolist() == [info['gt_label']]
    assert sample.img_path == str(RSICD_SAMPLE / 'images' / info['filename'])

    test_pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale=(32, 32)),
        dict(
            type='PackInputs',
            algorithm_keys=['text', 'gt_text_id', 'gt_image_id', 'image_id'],
            meta_keys=['img_path', 'filename'])
    ]
    test = DATASETS.build(
        dict(
            type='RSICD',
            data_root=str(RSICD_SAMPLE),
            ann_file='dataset_rsicd_sample.json',
            data_prefix='images',
            split='test',
            test_mode=True,
            pipeline=test_pipeline))
    sample = test[2]['data_samples']
    assert sample.gt_text_id == [10, 11, 12, 13, 14]
    assert sample.gt_image_id == [2] * 5 and sample.image_id == 2
    assert len(sample.text) == 5

    # a missing image fails lazily in the pipeline, naming the path
    info = test.get_data_info(0)
    info['img_path'] = str(RSICD_SAMPLE / 'images' / 'no_such_image.jpg')
    with pytest.raises(FileNotFoundError, match='no_such_image.jpg'):
        test.pipeline(info)


# ------------------------------------------------------------ synthetic
def test_synthetic_scenes_and_class_sources(tmp_path):
    images = [
        make_image('a.png', 'train', cls='Forest'),
        make_image('b.png', 'train', n=3, cls='river'),
        make_image('c.png', 'test', cls='Beach'),
        make_image('d.png', 'val'),
    ]
    ann = write_json(tmp_path / 'syn.json', images)
    ds = DATASETS.build(
        dict(type='SyntheticScenes', ann_file=ann, data_prefix='imgs'))
    # classes come from the whole json, not only from the train split
    assert ds.metainfo['classes'] == ('beach', 'forest', 'river')
    assert len(ds) == 8 and ds.img_size == 2 and ds.text_size == 8
    assert [ds[i]['gt_label'] for i in range(8)] == [1] * 5 + [2] * 3
    assert ds[5]['text'] == 'b.png caption 0 .'
    assert ds[5]['img_path'] == 'imgs/b.png' and ds[5]['filename'] == 'b.png'
    # a user-given class list keeps its order
    ds = SyntheticScenes(
        ann, split='test', test_mode=True, classes=['River', 'Beach'])
    assert ds.metainfo['classes'] == ('River', 'Beach')
    assert ds[0]['gt_label'] == 1
    # csv class_map and a callable rule fill what the json lacks
    csv_file = tmp_path / 'map.csv'
    csv_file.write_text('filename,class\nd.png,Desert\n')
    ds = RSRetrievalDataset(ann, split='val', class_map=str(csv_file))
    assert ds.metainfo['classes'][ds[0]['gt_label']] == 'desert'
    ds = RSRetrievalDataset(
        ann, split='val', label_rule=lambda f, caps: 'Meadow' + f[0])
    assert ds.metainfo['classes'][ds[0]['gt_label']] == 'meadowd'


def test_check_images(tmp_path):
    (tmp_path / 'imgs').mkdir()
    (tmp_path / 'imgs' / 'a.png').write_bytes(b'x')
    images = [make_image(f'{c}.png', cls='x') for c in 'abcdefg']
    ann = write_json(tmp_path / 'ann.json', images)
    ds = RSRetrievalDataset(
        'ann.json', data_root=str(tmp_path), data_prefix='imgs')
    assert ds.img_size == 7  # not checked by default
    with pytest.raises(FileNotFoundError) as err:
        RSRetrievalDataset(
            ann, data_prefix=str(tmp_path / 'imgs'), check_images=True)
    msg = str(err.value)
    assert msg.startswith('6 of 7 images') and 'b.png' in msg
    assert 'g.png' not in msg  # only the first few are listed


@pytest.mark.parametrize('mutate,kwargs,match', [
    (lambda ims: ims[1].pop('filename'), {}, r"images\[1\].*'filename'"),
    (lambda ims: ims[1].pop('split'), {}, r"images\[1\].*'b\.png'.*'split'"),
    (lambda ims: ims[0].pop('sentences'), {},
     r"images\[0\].*'a\.png'.*'sentences'"),
    (lambda ims: ims[1]['sentences'][2].pop('raw'), {},
     r"'b\.png'.*sentence 2.*'raw'"),
    (lambda ims: ims[1]['sentences'][3].update(raw='  \t'), {},
     r"'b\.png'.*sentence 3 is empty"),
    (lambda ims: ims[1]['sentences'].pop(), dict(test_mode=True),
     r"'b\.png'.* 4 captions, expected 5"),
    (lambda ims: ims[1].update(sentences=[]), {},
     r"'b\.png'.* 0 captions, expected at least 1"),
    (lambda ims: ims[0].update({'class': 3}), {}, r"integer label 3"),
])
def test_bad_input(tmp_path, mutate, kwargs, match):
    images = [make_image('a.png', cls='x'), make_image('b.png', cls='y')]
    mutate(images)
    ann = write_json(tmp_path / 'bad.json', images)
    with pytest.raises(ValueError, match=match) as err:
        RSRetrievalDataset(ann, **kwargs)
    assert 'bad.json' in str(err.value)


def test_bad_json_and_split(tmp_path):
    broken = tmp_path / 'broken.json'
    broken.write_text('{"images": [')
    with pytest.raises(ValueError, match=r'broken\.json is not valid JSON'):
        RSRetrievalDataset(str(broken))
    no_images = tmp_path / 'noimg.json'
    no_images.write_text('{"annotations": []}')
    with pytest.raises(ValueError, match=r'noimg\.json.*"images"'):
        RSRetrievalDataset(str(no_images))
    ann = write_json(tmp_path / 'ok.json', [make_image('a.png')])
    for split in ('dev', ['train', 'restval'], []):
        with pytest.raises(ValueError, match='Unknown split'):
            RSRetrievalDataset(ann, split=split)
    with pytest.raises(ValueError, match='Unknown label_rule'):
        RSRetrievalDataset(ann, label_rule='nope')
    # variable caption counts are fine in train mode or without a count
    images = [make_image('a.png', n=3), make_image('b.png', n=6)]
    ann = write_json(tmp_path / 'var.json', images)
    assert len(RSRetrievalDataset(ann)) == 9
    test = RSRetrievalDataset(ann, test_mode=True, captions_per_image=None)
    assert test[1]['gt_text_id'] == list(range(3, 9))


# ------------------------------------------------------------ base configs
CONFIGS = Path(__file__).resolve().parents[2] / 'configs' / '_base_' / \
    'datasets'


@pytest.mark.parametrize('name,dtype,scale',
                         [('rsicd', 'RSICD', 224), ('rsitmd', 'RSITMD', 256),
                          ('ucm', 'UCMCaptions', 256),
                          ('sydney', 'SydneyCaptions', 224)])
def test_base_config(name, dtype, scale):
    from mmengine.config import Config
    cfg = Config.fromfile(str(CONFIGS / f'{name}.py'))
    assert cfg.data_root == f'data/{name}' and cfg.img_scale == scale
    train, val, test = (cfg.train_dataloader, cfg.val_dataloader,
                        cfg.test_dataloader)
    for loader in (train, val, test):
        assert loader.collate_fn == dict(type='rsitr_mm.default_collate')
        assert loader.dataset.type == dtype
        assert loader.dataset.data_prefix == dict(img_path='images')
    assert train.sampler == dict(type='DefaultSampler', shuffle=True)
    assert train.drop_last is True and train.dataset.split == 'train'
    for loader, split in ((val, 'val'), (test, 'test')):
        assert loader.sampler == dict(type='DefaultSampler', shuffle=False)
        assert loader.dataset.split == split and loader.dataset.test_mode
    pack = train.dataset.pipeline[-1]
    # a key in both algorithm_keys and meta_keys makes PackInputs raise
    assert not set(pack.algorithm_keys) & set(pack.meta_keys)
    assert {'text', 'image_id'} <= set(pack.algorithm_keys)
    assert cfg.data_preprocessor.type == 'RetrievalDataPreprocessor'
    assert cfg.val_evaluator == dict(type='RSRetrievalMetric')
    assert cfg.test_evaluator == cfg.val_evaluator
    assert cfg.val_cfg.type == 'RSRetrievalValLoop'
    assert cfg.test_cfg.type == 'RSRetrievalTestLoop'


@needs(RSICD_SAMPLE, RSICD_CLASSES)
def test_base_config_loader_on_sample():
    import copy

    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(str(CONFIGS / 'rsicd.py'))
    pre = MODELS.build(cfg.data_preprocessor)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        for key in ('train_dataloader', 'test_dataloader'):
            loader_cfg = copy.deepcopy(cfg[key])
            loader_cfg.update(num_workers=0, batch_size=3)
            loader_cfg.dataset.update(
                data_root=str(RSICD_SAMPLE),
                ann_file='dataset_rsicd_sample.json',
                class_map=str(RSICD_CLASSES),
                split='train')
            batch = next(iter(Runner.build_dataloader(loader_cfg)))
            out = pre(batch, training=key == 'train_dataloader')
            assert out['images'].shape == (3, 3, 224, 224)
            assert out['images'].dtype == torch.float32
            samples = out['data_samples']
            assert all(s.gt_label.numel() == 1 and s.gt_label.item() >= 0
                       for s in samples)
            if key == 'test_dataloader':
                assert [s.image_id for s in samples] == [0, 1, 2]
                assert [len(s.text) for s in samples] == [5, 5, 5]
