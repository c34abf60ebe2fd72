# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Config mistakes stop ``tools/train.py`` before the first iteration.

Every case runs the tool's ``main`` in-process (its command line in
``sys.argv``) on the tiny demo model and checks the ONE error it gives (the
key, the expected value, the "did you mean" suggestion, the file) and that
nothing was trained or saved.
"""
import glob
import json
import os.path as osp
import sys

import pytest

# (id, extra command line, parts of the error)
CASES = [
    ('top-level-typo', ['--cfg-options', 'trian_cfg.max_epochs=1'],
     ["unknown top-level key 'trian_cfg'", "did you mean 'train_cfg'"]),
    ('nested-typo', ['--cfg-options', 'train_cfg.max_epoch=1'],
     ["train_cfg.max_epoch", "takes no argument 'max_epoch'",
      "did you mean 'max_epochs'"]),
    ('plain-dict-typo', ['--cfg-options', 'env_cfg.cudnn_benchmrk=True'],
     ["env_cfg has no key 'cudnn_benchmrk'",
      "did you mean 'cudnn_benchmark'"]),
    ('max_epochs-0', ['--cfg-options', 'train_cfg.max_epochs=0'],
     ['train_cfg.max_epochs must be an integer >= 1, got 0',
      'train nothing']),
    ('max_epochs-negative', ['--cfg-options', 'train_cfg.max_epochs=-1'],
     ['train_cfg.max_epochs must be an integer >= 1, got -1']),
    ('val_interval-0', ['--cfg-options', 'train_cfg.val_interval=0'],
     ['train_cfg.val_interval must be an integer >= 1, got 0']),
    ('hook-argument-typo',
     ['--cfg-options', 'default_hooks.checkpoint.intreval=1'],
     ['default_hooks.checkpoint', "'intreval'",
      "did you mean 'interval'"]),
    ('preprocessor-std-0',
     ['--cfg-options', 'model.data_preprocessor.std=[0,0,0]'],
     ['model.data_preprocessor', "'std' must be > 0", '[0, 0, 0]']),
    ('preprocessor-std-nan',
     ['--cfg-options', "model.data_preprocessor.std=[1,nan,1]"],
     ['model.data_preprocessor', "'std' must be 1 or 3 finite numbers"]),
    ('preprocessor-mean-2-values',
     ['--cfg-options', 'model.data_preprocessor.mean=[1.0,2.0]'],
     ['model.data_preprocessor', "'mean' must be 1 or 3 finite numbers",
      '[1.0, 2.0]']),
    ('preprocessor-argument-typo',
     ['--cfg-options', 'model.data_preprocessor.stdd=[1,1,1]'],
     ["RetrievalDataPreprocessor", "'stdd'", "did you mean 'std'"]),
    ('image_in_channels-mismatch',
     ['--cfg-options', 'model.image_in_channels=16'],
     ["'image_in_channels' is 16", 'outputs 32 channels']),
    ('tinycnn-base_channels-0',
     ['--cfg-options', 'model.image_encoder.base_channels=0'],
     ['TinyCNN', "'base_channels'", 'got 0']),
    ('cfg-options-without-equals', ['--cfg-options', 'model.embed_dim'],
     ["'model.embed_dim'", 'expected KEY=VALUE']),
]


@pytest.fixture(scope='module')
def setup(tmp_path_factory, tiny_demo):
    root = tmp_path_factory.mktemp('cfgcheck')
    data_root = tiny_demo.dataset(root, num_images=12, split=(8, 2, 2),
                                  seed=3)
    extra = ('train_dataloader = dict(batch_size=4, '
             'dataset=dict(data_root=data_root))\n'
             'val_dataloader = dict(batch_size=2, '
             'dataset=dict(data_root=data_root))\n'
             'test_dataloader = dict(batch_size=2, '
             'dataset=dict(data_root=data_root))\n'
             'train_cfg = dict(max_epochs=1, val_interval=1)\n')
    cfg = tiny_demo.config(root / 'tiny.py', data_root, extra)
    return dict(root=root, data_root=data_root, cfg=cfg, extra=extra)


def _train(load_tool, monkeypatch, capsys, argv):
    """Run tools/train.py; return (the error text, exit code or None)."""
    monkeypatch.setattr(sys, 'argv', ['train.py'] + argv)
    tool = load_tool('train')
    try:
        tool.main()
    except SystemExit as e:
        return capsys.readouterr().err + str(e.code), e.code
    except Exception as e:  # noqa: BLE001  the one error, as raised
        return f'{type(e).__name__}: {e}', None
    return '', 0


@pytest.mark.parametrize('argv,parts', [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_mistake_stops_training_before_it_starts(setup, tmp_path, load_tool,
                                                 monkeypatch, capsys, argv,
                                                 parts):
    work = tmp_path / 'work'
    msg, code = _train(load_tool, monkeypatch, capsys,
                       [setup['cfg'], '--work-dir', str(work)] + argv)
    assert code != 0, msg
    for part in parts:
        assert part in msg, (part, msg)
    assert not glob.glob(str(work / '**' / '*.pth'), recursive=True)


def test_unknown_top_level_key_in_the_config_file(setup, tmp_path,
                                                  tiny_demo, load_tool,
                                                  monkeypatch, capsys):
    cfg = tiny_demo.config(tmp_path / 'typo.py', setup['data_root'],
                           setup['extra'] + 'trian_cfg = dict(max_epochs=1)\n'
                           '_my_size = 384  # own variables start with _\n')
    msg, code = _train(load_tool, monkeypatch, capsys,
                       [cfg, '--work-dir', str(tmp_path / 'work')])
    assert code == 2, msg
    assert 'typo.py' in msg and "'trian_cfg'" in msg
    assert "did you mean 'train_cfg'" in msg and '_my_size' not in msg


def test_new_keys_that_constructors_take_are_accepted(setup, tmp_path,
                                                      load_tool, monkeypatch,
                                                      capsys):
    # a key absent from the config but an argument of the type it is set
    # under (TinyCNN's in_channels) is not a mistake
    msg, code = _train(load_tool, monkeypatch, capsys, [
        setup['cfg'], '--work-dir', str(tmp_path / 'work'), '--cfg-options',
        'model.image_encoder.in_channels=3', 'train_cfg.max_epochs=1'])
    assert code == 0, msg
    assert glob.glob(str(tmp_path / 'work' / 'epoch_1.pth'))


def test_mixed_image_sizes_name_the_file(setup, tmp_path, tiny_demo,
                                         load_tool, monkeypatch, capsys):
    import shutil

    from PIL import Image
    data_root = str(tmp_path / 'data')
    shutil.copytree(setup['data_root'], data_root)
    ann = json.load(open(osp.join(data_root, 'dataset_synthetic.json')))
    odd = next(i['filename'] for i in ann['images'] if i['split'] == 'train')
    path = glob.glob(osp.join(data_root, '**', odd), recursive=True)[0]
    Image.open(path).convert('RGB').resize((40, 40)).save(path)
    cfg = tiny_demo.config(tmp_path / 'mixed.py', data_root, setup['extra'])
    msg, code = _train(load_tool, monkeypatch, capsys,
                       [cfg, '--work-dir', str(tmp_path / 'work')])
    assert code != 0, msg
    assert 'images of different sizes in one batch' in msg, msg
    assert odd in msg and '(3, 40, 40)' in msg and '(3, 32, 32)' in msg
