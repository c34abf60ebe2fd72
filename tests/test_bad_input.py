# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Bad input, table-driven: every case must fail with the right error type
AND a message naming the offending file / field, and must leave no
half-written output behind."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS

import rsitr_mm  # noqa: F401
from rsitr_mm.datasets import RSRetrievalDataset
from rsitr_mm.datasets.precomp import convert_precomp
from rsitr_mm.models.utils.clip_convert import convert_clip_checkpoint

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO_CFG = osp.join(REPO, 'configs', 'demo_tinycnn-bigru_synthetic.py')


def _image(name, split='train', n=5, raw=None):
    return dict(
        filename=name,
        split=split,
        sentences=[dict(raw=raw if raw is not None else f'{name} cap {j}')
                   for j in range(n)])


def _write(tmp, content):
    path = osp.join(tmp, 'ann.json')
    if isinstance(content, bytes):
        with open(path, 'wb') as f:
            f.write(content)
        return path
    with open(path, 'w') as f:
        f.write(content if isinstance(content, str) else json.dumps(content))
    return path


# --------------------------------------------------------------- datasets
# (id, annotation content, dataset kwargs, error, substrings of the message)
DATASET_CASES = [
    ('malformed-json', '{"images": [', {}, ValueError,
     ['ann.json', 'not valid JSON']),
    ('no-images-list', {'img': []}, {}, ValueError,
     ['ann.json', '"images"']),
    ('missing-key', {'images': [{'filename': 'a.jpg', 'split': 'train'}]},
     {}, ValueError, ['ann.json', "'a.jpg'", "'sentences'"]),
    ('missing-raw', {'images': [dict(_image('a.jpg'),
                                     sentences=[{'tokens': []}])]},
     {}, ValueError, ['ann.json', "'a.jpg'", "'raw'"]),
    ('empty-caption', {'images': [_image('a.jpg', raw='  ')]}, {}, ValueError,
     ['ann.json', "'a.jpg'", 'sentence 0 is empty']),
    ('caption-count-test-mode',
     {'images': [_image('a.jpg', 'test'), _image('b.jpg', 'test', n=4)]},
     dict(split='test', test_mode=True), ValueError,
     ['ann.json', "'b.jpg'", '4 captions', 'expected 5']),
    ('unknown-split', {'images': [_image('a.jpg')]}, dict(split='dev'),
     ValueError, ['ann.json', "'dev'"]),
    ('missing-images-checked', {'images': [_image('gone.jpg')]},
     dict(check_images=True), FileNotFoundError,
     ['ann.json', 'gone.jpg', 'missing']),
    ('split-restval', {'images': [_image('a.jpg'), _image('r.jpg',
                                                          'restval')]},
     {}, ValueError, ['ann.json', "'r.jpg'", "'restval'", "'train'"]),
    ('split-capitalised', {'images': [_image('a.jpg'), _image('t.jpg',
                                                            'Test')]},
     {}, ValueError, ['ann.json', "'t.jpg'", "'Test'", 'expected one of']),
    ('duplicate-filename', {'images': [_image('a.jpg'), _image('a.jpg')]},
     {}, ValueError, ['ann.json', 'images[1]', "filename 'a.jpg'"]),
    ('duplicate-imgid', {'images': [dict(_image('a.jpg'), imgid=7),
                                    dict(_image('b.jpg'), imgid=7)]},
     {}, ValueError, ['ann.json', 'images[1]', 'imgid 7']),
    ('empty-split', {'images': [_image('a.jpg'), _image('b.jpg', 'test')]},
     dict(split='val'), ValueError,
     ['ann.json', "'val'", "'train': 1", "'test': 1", '--val-from-train']),
    ('not-utf8', b'{"images": [{"filename": "caf\xe9.jpg"}]}', {},
     ValueError, ['ann.json', 'not UTF-8', 'byte']),
]


@pytest.mark.parametrize(
    'content,kwargs,error,parts',
    [c[1:] for c in DATASET_CASES],
    ids=[c[0] for c in DATASET_CASES])
def test_dataset_bad_annotations(tmp_path, content, kwargs, error, parts):
    ann = _write(str(tmp_path), content)
    with pytest.raises(error) as err:
        RSRetrievalDataset(ann_file=ann, data_prefix=str(tmp_path), **kwargs)
    for part in parts:
        assert part in str(err.value), (part, str(err.value))


def test_dataset_missing_annotation_file(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        RSRetrievalDataset(ann_file=str(tmp_path / 'nope.json'))
    assert 'nope.json' in str(err.value)


def test_dataset_missing_image_when_loaded(tmp_path):
    """Without ``check_images`` the image loader names the missing file."""
    ann = _write(str(tmp_path), {'images': [_image('gone.jpg')]})
    ds = RSRetrievalDataset(
        ann_file=ann,
        data_prefix=dict(img_path=str(tmp_path / 'imgs')),
        pipeline=[dict(type='LoadImageFromFile')])
    assert len(ds) == 5  # one item per caption; the json itself is fine
    with pytest.raises(FileNotFoundError) as err:
        ds[0]
    assert osp.join('imgs', 'gone.jpg') in str(err.value)


def test_dataset_reads_bom_json_and_bom_class_map(tmp_path):
    ann = _write(str(tmp_path), b'\xef\xbb\xbf' + json.dumps(
        {'images': [_image('a_1.jpg'), _image('b_2.jpg')]}).encode())
    csv_path = tmp_path / 'classes.csv'
    csv_path.write_bytes(b'\xef\xbb\xbffilename,class\na_1.jpg,Airport\n'
                         b'b_2.jpg,Beach\n')
    ds = RSRetrievalDataset(ann_file=ann, class_map=str(csv_path),
                            label_rule=None)
    # the BOM neither breaks the json nor turns the header into a class
    assert ds.metainfo['classes'] == ('airport', 'beach')


def test_dataset_warns_on_train_test_leakage(tmp_path, capsys):
    from mmengine.logging import MMLogger
    MMLogger.get_instance('leak', log_level='WARNING')
    ann = _write(str(tmp_path), {'images': [_image('a.jpg'),
                                            _image('a.jpg', 'test')]})
    ds = RSRetrievalDataset(ann_file=ann)
    assert ds.img_size == 1
    out = capsys.readouterr()
    assert 'leakage' in out.out + out.err and 'a.jpg' in out.out + out.err


@pytest.mark.parametrize('content', [b'', b'not an image at all'],
                         ids=['zero-byte', 'undecodable'])
def test_dataset_bad_image_names_the_file(tmp_path, content):
    os.makedirs(tmp_path / 'imgs')
    (tmp_path / 'imgs' / 'bad.jpg').write_bytes(content)
    ann = _write(str(tmp_path), {'images': [_image('bad.jpg')]})
    ds = RSRetrievalDataset(
        ann_file=ann, data_prefix=dict(img_path=str(tmp_path / 'imgs')),
        pipeline=[dict(type='LoadImageFromFile')])
    with pytest.raises(Exception) as err:
        ds[0]
    assert 'bad.jpg' in str(err.value)
    assert 'ann.json' in str(err.value) or 'bad.jpg' in str(err.value)


@pytest.mark.parametrize('test_mode', [False, True], ids=['train', 'test'])
def test_dataset_indices_update_sizes_and_ids(tmp_path, test_mode):
    ann = _write(str(tmp_path), {'images': [
        _image(f'{i}.jpg', 'test') for i in range(4)]})
    ds = RSRetrievalDataset(ann_file=ann, split='test', test_mode=test_mode,
                            indices=[1, 3] if test_mode else [5, 6, 15])
    if test_mode:
        assert (ds.img_size, ds.text_size) == (2, 10)
        assert ds[1]['gt_text_id'] == [5, 6, 7, 8, 9]
        assert ds[1]['image_id'] == 1
    else:
        assert (ds.img_size, ds.text_size) == (2, 3)
        assert [ds[i]['image_id'] for i in range(3)] == [0, 0, 1]
        assert [ds[i]['text_id'] for i in range(3)] == [0, 1, 2]


# ------------------------------------------------------ precomp converter
def _precomp(tmp, files):
    folder = osp.join(tmp, 'x_precomp')
    os.makedirs(folder)
    for name, lines in files.items():
        with open(osp.join(folder, name), 'w') as f:
            f.write('\n'.join(lines) + '\n')
    return folder


GOOD_TEST = {
    'test_caps.txt': [f'test cap {i}' for i in range(5)],
    'test_filename.txt': ['t.jpg'],
}
PRECOMP_CASES = [
    ('caps-not-multiple', {
        'train_caps.txt': ['a', 'b', 'c'],
        'train_filename.txt': ['a.jpg'],
        **GOOD_TEST
    }, ValueError, ['train_caps.txt', '3 lines', 'captions_per_image=5']),
    ('filename-count', {
        'train_caps.txt': [f'c{i}' for i in range(10)],
        'train_filename.txt': ['a.jpg', 'b.jpg', 'c.jpg'],
        **GOOD_TEST
    }, ValueError, ['train_filename.txt', '3 lines']),
    ('empty-test-caption', {
        'train_caps.txt': [f'c{i}' for i in range(5)],
        'train_filename.txt': ['a.jpg'],
        'test_caps.txt': ['c0', 'c1', '', 'c3', 'c4'],
        'test_filename.txt': ['t.jpg'],
    }, ValueError, ['test_caps.txt:3', 'empty caption']),
    ('val-from-train-with-val', {
        'train_caps.txt': [f'c{i}' for i in range(10)],
        'train_filename.txt': ['a.jpg', 'b.jpg'],
        'val_caps.txt': [f'v{i}' for i in range(5)],
        'val_filename.txt': ['v.jpg'],
        **GOOD_TEST
    }, ValueError, ['x_precomp', 'val files already']),
    ('val-from-train-too-many', {
        'train_caps.txt': [f'c{i}' for i in range(10)],
        'train_filename.txt': ['a.jpg', 'b.jpg'],
        **GOOD_TEST
    }, ValueError, ['x_precomp', 'between 1 and 1', 'got 2']),
    ('filename-changes-in-group', {
        'train_caps.txt': [f'c{i}' for i in range(5)],
        'train_filename.txt': ['a.jpg'] * 4 + ['b.jpg'],
        **GOOD_TEST
    }, ValueError, ['train_filename.txt:5', "'b.jpg'"]),
    ('duplicate-filename', {
        'train_caps.txt': [f'c{i}' for i in range(5)],
        'train_filename.txt': ['t.jpg'],
        **GOOD_TEST
    }, ValueError, ['test_filename.txt', "'t.jpg'", 'occurs twice']),
    ('partner-missing', {
        'train_caps.txt': [f'c{i}' for i in range(5)],
        **GOOD_TEST
    }, FileNotFoundError, ['train_filename.txt', 'partner']),
    ('no-test-split', {
        'train_caps.txt': [f'c{i}' for i in range(5)],
        'train_filename.txt': ['a.jpg'],
    }, FileNotFoundError, ['x_precomp', 'test_caps.txt']),
]


@pytest.mark.parametrize(
    'files,error,parts', [c[1:] for c in PRECOMP_CASES],
    ids=[c[0] for c in PRECOMP_CASES])
def test_precomp_converter_bad_input_writes_nothing(tmp_path, files, error,
                                                    parts):
    folder = _precomp(str(tmp_path), files)
    out_dir = tmp_path / 'out'
    out_dir.mkdir()
    out = str(out_dir / 'dataset.json')
    val_n = 2 if 'val_caps.txt' in files or len(
        files.get('train_filename.txt', [])) == 2 else 0
    with pytest.raises(error) as err:
        convert_precomp(folder, out, val_from_train=val_n)
    for part in parts:
        assert part in str(err.value), (part, str(err.value))
    assert os.listdir(out_dir) == []  # no output, no temporary file


def test_precomp_cli_drops_blank_train_captions_and_makes_val(tmp_path,
                                                              capsys):
    """The RSITMD precomp copy has blank train captions and no val files."""
    import importlib.util
    train_caps = [f'train cap {i}' for i in range(20)]
    train_caps[2] = ''  # image a.jpg
    train_caps[16] = '  '  # image d.jpg
    folder = _precomp(str(tmp_path), {
        'train_caps.txt': train_caps,
        'train_filename.txt': ['a.jpg', 'b.jpg', 'c.jpg', 'd.jpg'],
        **GOOD_TEST
    })
    spec = importlib.util.spec_from_file_location(
        'p2k', osp.join(REPO, 'tools', 'dataset_converters',
                        'precomp_to_karpathy.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    outs = []
    for run in range(2):
        out = str(tmp_path / f'out{run}.json')
        with pytest.warns(UserWarning) as rec:
            assert tool.main([folder, out, '--val-from-train', '1',
                              '--seed', '3']) == 0
        msgs = [str(w.message) for w in rec]
        assert len(msgs) == 1, msgs  # one warning naming the images
        assert 'a.jpg (line 3)' in msgs[0] and 'd.jpg (line 17)' in msgs[0]
        outs.append(json.load(open(out)))
    assert outs[0] == outs[1]  # seeded
    images = outs[0]['images']
    assert [i['split'] for i in images].count('val') == 1
    caps = {i['filename']: len(i['sentences']) for i in images}
    assert caps == {'a.jpg': 4, 'b.jpg': 5, 'c.jpg': 5, 'd.jpg': 4,
                    't.jpg': 5}
    # the json is a valid dataset with a non-empty val split
    ds = RSRetrievalDataset(ann_file=str(tmp_path / 'out0.json'),
                            split='val', test_mode=True,
                            captions_per_image=None)
    assert ds.img_size == 1


def test_precomp_cli_reports_error_and_keeps_old_output(tmp_path):
    from importlib import util
    spec = util.spec_from_file_location(
        'precomp_cli',
        osp.join(REPO, 'tools', 'dataset_converters',
                 'precomp_to_karpathy.py'))
    cli = util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    folder = _precomp(str(tmp_path), PRECOMP_CASES[0][1])
    out = tmp_path / 'dataset.json'
    out.write_text('{"old": true}')
    assert cli.main([folder, str(out)]) == 1
    assert json.loads(out.read_text()) == {'old': True}  # untouched
    assert sorted(os.listdir(tmp_path)) == ['dataset.json', 'x_precomp']


def test_failure_while_writing_leaves_no_file(tmp_path, monkeypatch):
    """A crash in the middle of the write leaves neither output nor tmp."""
    good = dict(PRECOMP_CASES[0][1])
    good['train_caps.txt'] = [f'c{i}' for i in range(5)]
    folder = _precomp(str(tmp_path), good)
    out_dir = tmp_path / 'out'
    out_dir.mkdir()

    def boom(fd):
        # the temporary file already holds the bytes when the disk fills up
        raise OSError('disk full')

    monkeypatch.setattr('rsitr_mm.utils.fileio.os.fsync', boom)
    with pytest.raises(OSError, match='disk full'):
        convert_precomp(folder, str(out_dir / 'dataset.json'))
    assert os.listdir(out_dir) == []


# --------------------------------------------------------- CLIP converter
def _junk(path):
    with open(path, 'wb') as f:
        f.write(b'\x00not a checkpoint\xff' * 10)


def _wrong_keys(path):
    torch.save({'encoder.weight': torch.zeros(2, 2)}, path)


def _resnet_tower(path):
    torch.save({'visual.layer1.0.conv1.weight': torch.zeros(2, 2)}, path)


def _no_tensors(path):
    torch.save({'epoch': 3, 'config': {'lr': 1}}, path)


CLIP_CASES = [
    ('junk-bytes', _junk, RuntimeError, ['src.pt', 'weights_only']),
    ('wrong-keys', _wrong_keys, ValueError,
     ['src.pt', 'visual.conv1.weight', 'encoder.weight']),
    ('resnet-tower', _resnet_tower, ValueError, ['src.pt', 'ResNet']),
    ('no-tensors', _no_tensors, ValueError,
     ['src.pt', 'wrapper keys', "'epoch'"]),
]


@pytest.mark.parametrize(
    'make,error,parts', [c[1:] for c in CLIP_CASES],
    ids=[c[0] for c in CLIP_CASES])
def test_clip_converter_bad_checkpoint_writes_nothing(tmp_path, make, error,
                                                      parts):
    src = str(tmp_path / 'src.pt')
    make(src)
    out_parent = tmp_path / 'out'
    out_parent.mkdir()
    with pytest.raises(error) as err:
        convert_clip_checkpoint(src, str(out_parent / 'clip-hf'))
    for part in parts:
        assert part in str(err.value), (part, str(err.value))
    assert os.listdir(out_parent) == []  # no out_dir, no temporary folder


def test_clip_converter_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='absent.pt'):
        convert_clip_checkpoint(
            str(tmp_path / 'absent.pt'), str(tmp_path / 'o'))


def _tiny_openclip_src(path, nan=False):
    open_clip = pytest.importorskip('open_clip')
    torch.manual_seed(0)
    model = open_clip.model.CLIP(
        embed_dim=8,
        vision_cfg=dict(layers=1, width=64, head_width=64, patch_size=16,
                        image_size=32),
        text_cfg=dict(context_length=77, vocab_size=49408, width=64, heads=1,
                      layers=1))
    sd = model.state_dict()
    if nan:
        sd['visual.proj'][0, 0] = float('nan')
    torch.save(sd, path)


@pytest.mark.parametrize(
    'existing', ['user-folder', 'file', 'clip-config-plus-user-file'])
def test_clip_converter_overwrite_only_replaces_its_output(tmp_path,
                                                           existing):
    src = str(tmp_path / 'src.pt')
    _tiny_openclip_src(src)
    out = tmp_path / 'target'
    if existing == 'file':
        out.write_text('precious')
    else:
        out.mkdir()
        (out / 'notes.txt').write_text('precious')
        if existing == 'clip-config-plus-user-file':
            (out / 'config.json').write_text('{"model_type": "clip"}')
            (out / 'model.safetensors').write_bytes(b'')
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(FileExistsError) as err:
        convert_clip_checkpoint(src, str(out), overwrite=True)
    assert 'target' in str(err.value) and 'not the output' in str(err.value)
    assert sorted(os.listdir(tmp_path)) == before  # untouched, no temp dir
    assert 'precious' in (out.read_text() if existing == 'file' else
                          (out / 'notes.txt').read_text())


def test_clip_converter_overwrite_replaces_previous_output(tmp_path):
    src = str(tmp_path / 'src.pt')
    _tiny_openclip_src(src)
    out = str(tmp_path / 'hf')
    convert_clip_checkpoint(src, out)
    convert_clip_checkpoint(src, out, overwrite=True)
    assert sorted(os.listdir(tmp_path)) == ['hf', 'src.pt']  # old one gone
    assert osp.isfile(osp.join(out, 'model.safetensors'))


def test_clip_converter_refuses_nan_weights(tmp_path):
    src = str(tmp_path / 'src.pt')
    _tiny_openclip_src(src, nan=True)
    (tmp_path / 'out').mkdir()
    with pytest.raises(ValueError) as err:
        convert_clip_checkpoint(src, str(tmp_path / 'out' / 'hf'))
    assert 'src.pt' in str(err.value) and 'NaN or Inf' in str(err.value)
    assert 'visual_projection' in str(err.value) or 'proj' in str(err.value)
    assert os.listdir(tmp_path / 'out') == []


# ---------------------------------------------------------------- configs
def _demo_model(ann, **changes):
    """The demo model config, its vocabulary built from a tiny json."""
    cfg = Config.fromfile(DEMO_CFG)
    model = cfg.model
    model.text_encoder.ann_files = [ann]
    model.update(changes)
    return model


def _unknown_encoder(ann):
    return _demo_model(ann, image_encoder=dict(type='NoSuchBackbone'))


def _unknown_retriever(ann):
    return dict(_demo_model(ann), type='NoSuchRetriever')


def _identity_mismatch(ann):
    return _demo_model(ann, image_proj='identity', embed_dim=64)


def _bad_proj_kind(ann):
    return _demo_model(ann, text_proj='conv')


def _image_in_channels_mismatch(ann):
    # TinyCNN's last stage outputs 256 channels (base 32, 4 stages)
    return _demo_model(ann, image_in_channels=64)


def _neck_in_channels_mismatch(ann):
    return _demo_model(
        ann, image_encoder=dict(type='TinyCNN', base_channels=8,
                                num_stages=2, out_indices=(0, 1)),
        image_neck=dict(type='BidirectionalScaleDecoupling',
                        in_channels=[8, 32]))


CONFIG_CASES = [
    ('unknown-backbone-type', _unknown_encoder, KeyError, ['NoSuchBackbone']),
    ('image_in_channels-mismatch', _image_in_channels_mismatch, ValueError,
     ["'image_in_channels' is 64", 'TinyCNN', 'outputs 256 channels']),
    ('neck-in_channels-mismatch', _neck_in_channels_mismatch, ValueError,
     ['BidirectionalScaleDecoupling', 'in_channels [8, 32]',
      'TinyCNN', '[8, 16]']),
    ('unknown-model-type', _unknown_retriever, KeyError, ['NoSuchRetriever']),
    ('identity-dim-mismatch', _identity_mismatch, ValueError,
     ['image_proj="identity"', '64', '256']),
    ('unknown-proj-kind', _bad_proj_kind, ValueError, ['text_proj', "'conv'"]),
]


@pytest.mark.parametrize(
    'make,error,parts', [c[1:] for c in CONFIG_CASES],
    ids=[c[0] for c in CONFIG_CASES])
def test_bad_model_config(tmp_path, make, error, parts):
    cfg = make(_write(str(tmp_path), {'images': [_image('a.jpg')]}))
    with pytest.raises(error) as err:
        MODELS.build(cfg)
    for part in parts:
        assert part in str(err.value), (part, str(err.value))


# --------------------------------------------------- config value ranges
# (id, registered type, kwargs, config key, value shown in the message)
_NECK_IN = dict(in_channels=[8, 16])
RANGE_CASES = [
    ('embed_dim-0', 'DualEncoderRetriever', dict(embed_dim=0), 'embed_dim',
     '0'),
    ('embed_dim-float', 'DualEncoderRetriever', dict(embed_dim=2.5),
     'embed_dim', '2.5'),
    ('retriever-temperature-nan', 'DualEncoderRetriever',
     dict(temperature=float('nan')), 'temperature', 'nan'),
    ('retriever-temperature-0', 'DualEncoderRetriever', dict(temperature=0),
     'temperature', '0'),
    ('infonce-temperature-nan', 'MultiPositiveInfoNCELoss',
     dict(temperature=float('nan')), 'temperature', 'nan'),
    ('infonce-temperature-negative', 'MultiPositiveInfoNCELoss',
     dict(temperature=-0.1), 'temperature', '-0.1'),
    ('infonce-loss_weight-inf', 'MultiPositiveInfoNCELoss',
     dict(loss_weight=float('inf')), 'loss_weight', 'inf'),
    ('triplet-margin-negative', 'TripletRankingLoss', dict(margin=-0.2),
     'margin', '-0.2'),
    ('triplet-margin-string', 'TripletRankingLoss', dict(margin='0.2'),
     'margin', "'0.2'"),
    ('stl-margin-negative', 'SemanticGuidedTripletLoss', dict(margin=-1.0),
     'margin', '-1.0'),
    ('stl-momentum-above-1', 'SemanticGuidedTripletLoss',
     dict(prototype_momentum=1.5), 'prototype_momentum', '1.5'),
    ('stl-prototype-temperature-0', 'SemanticGuidedTripletLoss',
     dict(prototype_temperature=0.0), 'prototype_temperature', '0.0'),
    ('bsd-topk_ratio-0', 'BidirectionalScaleDecoupling',
     dict(_NECK_IN, topk_ratio=0.0), 'topk_ratio', '0.0'),
    ('bsd-out_channels-0', 'BidirectionalScaleDecoupling',
     dict(_NECK_IN, out_channels=0), 'out_channels', '0'),
    ('bsd-softmax-temperature-nan', 'BidirectionalScaleDecoupling',
     dict(_NECK_IN, softmax_temperature=float('nan')),
     'softmax_temperature', 'nan'),
    ('dapn-embed_dim-negative', 'DualAttentionPerception',
     dict(embed_dim=-4), 'embed_dim', '-4'),
    ('dapn-reduction-0', 'DualAttentionPerception', dict(reduction=0),
     'reduction', '0'),
    ('lsh-num_classes-0', 'LabelSemanticHead', dict(num_classes=0),
     'num_classes', '0'),
    ('lsh-decouple_weight-nan', 'LabelSemanticHead',
     dict(num_classes=3, decouple_weight=float('nan')), 'decouple_weight',
     'nan'),
    ('osfcm-top_k-0', 'ObjectSemanticClusterHead', dict(top_k=0), 'top_k',
     '0'),
    ('osfcm-temperature-nan', 'ObjectSemanticClusterHead',
     dict(temperature=float('nan')), 'temperature', 'nan'),
    ('bigru-hidden_dim-0', 'BiGRUTextEncoder', dict(hidden_dim=0),
     'hidden_dim', '0'),
    ('bigru-dropout-1', 'BiGRUTextEncoder', dict(dropout=1.0), 'dropout',
     '1.0'),
    ('bigru-num_layers-bool', 'BiGRUTextEncoder', dict(num_layers=True),
     'num_layers', 'True'),
    ('tinycnn-base_channels-0', 'TinyCNN', dict(base_channels=0),
     'base_channels', '0'),
    ('tinycnn-in_channels-0', 'TinyCNN', dict(in_channels=0), 'in_channels',
     '0'),
    ('preprocessor-std-0', 'RetrievalDataPreprocessor',
     dict(mean=[0, 0, 0], std=[1, 0, 1]), 'std', '[1, 0, 1]'),
    ('preprocessor-std-nan', 'RetrievalDataPreprocessor',
     dict(mean=[0, 0, 0], std=[1, float('nan'), 1]), 'std', 'nan'),
    ('preprocessor-mean-2-values', 'RetrievalDataPreprocessor',
     dict(mean=[1.0, 2.0], std=[1.0, 1.0]), 'mean', '[1.0, 2.0]'),
    ('preprocessor-lengths-differ', 'RetrievalDataPreprocessor',
     dict(mean=[1.0, 2.0, 3.0], std=[1.0]), 'mean', '3 values'),
]


@pytest.mark.parametrize(
    'type_,kwargs,key,shown', [c[1:] for c in RANGE_CASES],
    ids=[c[0] for c in RANGE_CASES])
def test_config_values_are_range_checked(tmp_path, type_, kwargs, key,
                                         shown):
    ann = _write(str(tmp_path), {'images': [_image('a.jpg')]})
    if type_ == 'DualEncoderRetriever':
        cfg = _demo_model(ann, **kwargs)
    elif type_ == 'BiGRUTextEncoder':
        cfg = dict(type=type_, ann_files=[ann], **kwargs)
    else:
        cfg = dict(type=type_, **kwargs)
    with pytest.raises(ValueError) as err:
        MODELS.build(cfg)
    msg = str(err.value)
    assert type_ in msg and repr(key) in msg and shown in msg, msg


# ------------------------------------------------------------------- CLIs
def test_test_cli_missing_checkpoint(tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE='1')
    env.pop('PYTHONPATH', None)
    missing = str(tmp_path / 'nothing_here.pth')
    proc = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'test.py'), DEMO_CFG,
         missing, '--work-dir', str(tmp_path / 'w')],
        cwd=str(tmp_path), env=env, capture_output=True, text=True,
        timeout=120)
    assert proc.returncode != 0
    assert 'FileNotFoundError' in proc.stderr
    assert 'nothing_here.pth' in proc.stderr
    assert not (tmp_path / 'w').exists()  # failed before building anything
