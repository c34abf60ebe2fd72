# Copyright (c) rsitr_mm contributors. All rights reserved.
import importlib.util
import json
from pathlib import Path

import pytest

from rsitr_mm.datasets import RSRetrievalDataset
from rsitr_mm.datasets.precomp import convert_precomp, precomp_to_karpathy

REPO = Path(__file__).resolve().parents[2]
ANN = REPO.parent / 'shared' / 'data' / 'annotations'
PRECOMP = ANN / 'precomp'
TOOL = REPO / 'tools' / 'dataset_converters' / 'precomp_to_karpathy.py'


def lines(path):
    return path.read_text().split('\n')[:-1]


def load_tool():
    spec = importlib.util.spec_from_file_location('precomp_tool', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_precomp(folder, train_caps, train_names, test_caps, test_names):
    folder.mkdir(exist_ok=True)
    for name, rows in (('train_caps', train_caps), ('train_filename',
                                                    train_names),
                       ('test_caps', test_caps), ('test_filename',
                                                  test_names)):
        (folder / f'{name}.txt').write_text(''.join(r + '\n' for r in rows))
    return str(folder)


def good_files():
    train_caps = [f'train {i} cap {j}' for i in range(2) for j in range(5)]
    test_caps = [f'test cap {j}' for j in range(5)]
    return train_caps, ['t0.tif', 't1.tif'], test_caps, ['v0.tif'] * 5


@pytest.mark.skipif(not PRECOMP.is_dir(), reason='shared data absent')
@pytest.mark.parametrize('name,json_file', [
    ('ucm', ANN / 'ucm_captions' / 'dataset_modified.json'),
    ('sydney', ANN / 'sydney_captions' / 'dataset_modified.json'),
])
def test_real_round_trip(tmp_path, name, json_file):
    folder = PRECOMP / f'{name}_precomp'
    out = tmp_path / 'out.json'
    convert_precomp(str(folder), str(out))
    data = json.loads(out.read_text())
    assert data['dataset'] == name
    ref = json.loads(json_file.read_text())['images']

    for split, ref_split in (('train', 'train'), ('test', 'val')):
        ds = RSRetrievalDataset(str(out), split=split, test_mode=True)
        caps = lines(folder / f'{split}_caps.txt')
        # filenames: one per image (train) or one per caption line (test)
        names = lines(folder / f'{split}_filename.txt')
        if len(names) == len(caps):
            names = names[::5]
        expected = [im for im in ref if im['split'] == ref_split]
        got = [ds.get_data_info(k) for k in range(len(ds))]
        # same images in the same order as the Karpathy split ...
        assert [g['filename'] for g in got] == names == \
            [im['filename'] for im in expected]
        # ... with exactly the precomp captions, which are (nearly) the
        # json's: the precomp copies carry a few spelling variants.
        assert [c for g in got for c in g['text']] == caps
        ref_caps = [s['raw'] for im in expected for s in im['sentences']]
        same = sum(a == b for a, b in zip(caps, ref_caps))
        assert same >= 0.99 * len(caps)
        assert ds.text_size == len(caps)
    sentids = [s['sentid'] for im in data['images'] for s in im['sentences']]
    assert sentids == list(range(len(sentids)))


@pytest.mark.skipif(not PRECOMP.is_dir(), reason='shared data absent')
def test_real_sydney_verify_variant():
    folder = PRECOMP / 'sydney_precomp'
    data = precomp_to_karpathy(str(folder), suffix='_verify')
    by_split = {}
    for im in data['images']:
        by_split.setdefault(im['split'], []).append(im['filename'])
    assert by_split['train'] == lines(folder / 'train_filename_verify.txt')
    assert by_split['val'] == lines(folder / 'val_filename_verify.txt')
    assert by_split['test'] == lines(folder / 'test_filename.txt')[::5]
    assert set(by_split['train']) | set(by_split['val']) == set(
        lines(folder / 'train_filename.txt'))


@pytest.mark.skipif(not PRECOMP.is_dir(), reason='shared data absent')
def test_real_rsitmd_blank_train_captions_dropped():
    """The common RSITMD precomp copy has blank train captions: converted,
    with one warning naming the images; a val split can be drawn."""
    caps_file = PRECOMP / 'rsitmd_precomp' / 'train_caps.txt'
    first_blank = next(i for i, c in enumerate(lines(caps_file), 1)
                       if not c.strip())
    with pytest.warns(UserWarning) as rec:
        data = precomp_to_karpathy(str(caps_file.parent), val_from_train=3)
    msgs = [str(w.message) for w in rec if 'blank' in str(w.message)]
    assert len(msgs) == 1 and f'line {first_blank}' in msgs[0]
    assert all(s['raw'].strip() for im in data['images']
               for s in im['sentences'])
    assert sum(im['split'] == 'val' for im in data['images']) == 3


def test_synthetic_conversion_with_val(tmp_path):
    folder = write_precomp(tmp_path / 'x_precomp', *good_files())
    val_caps = [f'val cap {j}' for j in range(5)]
    (tmp_path / 'x_precomp' / 'val_caps.txt').write_text('\n'.join(val_caps) +
                                                         '\n')
    # no trailing newline and Windows line ends are accepted
    (tmp_path / 'x_precomp' / 'val_filename.txt').write_text('w.tif\r')
    data = precomp_to_karpathy(folder)
    assert data['dataset'] == 'x'
    assert [(im['filename'], im['split'], im['imgid'])
            for im in data['images']] == [('t0.tif', 'train', 0),
                                          ('t1.tif', 'train', 1),
                                          ('w.tif', 'val', 2),
                                          ('v0.tif', 'test', 3)]
    assert [s['raw'] for s in data['images'][2]['sentences']] == val_caps
    assert data['images'][3]['sentences'][4]['tokens'] == ['test', 'cap', '4']
    # 10 train lines regrouped by 2 give 5 images, not the 2 filenames
    with pytest.raises(ValueError, match='expected 5 .one filename per'):
        precomp_to_karpathy(folder, captions_per_image=2)


def test_synthetic_refusals(tmp_path):
    train_caps, train_names, test_caps, test_names = good_files()

    folder = write_precomp(tmp_path / 'a', train_caps, train_names + ['x'],
                           test_caps, test_names)
    with pytest.raises(
            ValueError, match=r'train_filename\.txt has 3 lines.*10 captions'):
        precomp_to_karpathy(folder)

    bad_names = test_names[:3] + ['other.tif'] + test_names[4:]
    folder = write_precomp(tmp_path / 'b', train_caps, train_names, test_caps,
                           bad_names)
    with pytest.raises(
            ValueError, match=r"test_filename\.txt:4: filename 'other\.tif'"):
        precomp_to_karpathy(folder)

    caps = list(test_caps)
    caps[2] = '   '  # blank test captions stay an error
    folder = write_precomp(tmp_path / 'c', train_caps, train_names, caps,
                           test_names)
    with pytest.raises(ValueError, match=r'test_caps\.txt:3: empty caption'):
        precomp_to_karpathy(folder)

    folder = write_precomp(tmp_path / 'd', train_caps[:9], train_names,
                           test_caps, test_names)
    with pytest.raises(ValueError, match=r'train_caps\.txt has 9 lines'):
        precomp_to_karpathy(folder)

    folder = write_precomp(tmp_path / 'e', train_caps, train_names, test_caps,
                           ['t1.tif'] * 5)
    with pytest.raises(ValueError, match=r"'t1\.tif' occurs twice"):
        precomp_to_karpathy(folder)

    folder = write_precomp(tmp_path / 'f', train_caps, train_names, test_caps,
                           test_names)
    (tmp_path / 'f' / 'test_caps.txt').unlink()
    with pytest.raises(FileNotFoundError, match=r'test_caps\.txt'):
        precomp_to_karpathy(folder)


def test_atomic_write_and_cli(tmp_path, capsys):
    folder = write_precomp(tmp_path / 'ok_precomp', *good_files())
    out = tmp_path / 'out' / 'ann.json'
    tool = load_tool()
    assert tool.main([folder, str(out), '--dataset', 'demo']) == 0
    assert 'train 2, test 1' in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data['dataset'] == 'demo'
    assert [im['filename'] for im in data['images']] == \
        ['t0.tif', 't1.tif', 'v0.tif']
    assert data['images'][1]['sentences'][0]['raw'] == 'train 1 cap 0'
    assert data['images'][1]['sentids'] == [5, 6, 7, 8, 9]
    assert sorted(p.name for p in out.parent.iterdir()) == ['ann.json']

    # a failing conversion leaves the previous output untouched
    before = out.read_text()
    bad = write_precomp(tmp_path / 'bad', ['x'] * 5, ['a'], ['y'] * 5,
                        ['b'] * 4 + ['c'])
    assert tool.main([bad, str(out)]) == 1
    assert 'test_filename.txt:5' in capsys.readouterr().err
    assert out.read_text() == before
    assert sorted(p.name for p in out.parent.iterdir()) == ['ann.json']
