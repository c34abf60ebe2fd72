# Copyright (c) rsitr_mm contributors. All rights reserved.
"""tools/retrieve.py refuses what it cannot answer and damaged indexes.

Through the tool's ``main`` (in-process): an index folder names a config
and a checkpoint, which are run only on request and only when their sha256
match; damaged index files fail with one message naming the file; a second
build into a locked folder fails; empty queries are refused and queries
with no known word warn.
"""
import fcntl
import importlib.util
import json
import os
import os.path as osp
import shutil
import warnings

import pytest

from rsitr_mm.apis import ImageIndex, list_images
from rsitr_mm.datasets.synthetic import generate_synthetic_dataset

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'retrieve.py')

CONFIG = """
_base_ = [r'{repo}/configs/demo_tinycnn-bigru_synthetic.py']
model = dict(
    image_encoder=dict(base_channels=4, num_stages=2, out_indices=(1, )),
    image_in_channels=8,
    text_encoder=dict(ann_files=[r'{ann}'], word_dim=8, hidden_dim=8),
    text_in_channels=8,
    embed_dim=8)
"""


def _tool():
    spec = importlib.util.spec_from_file_location('retrieve_trust', TOOL)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope='module')
def built(tmp_path_factory):
    import torch

    from rsitr_mm.apis import init_retriever
    root = tmp_path_factory.mktemp('rt')
    data = str(root / 'data')
    generate_synthetic_dataset(data, num_images=6, image_size=32, seed=2,
                               split=(4, 1, 1), progress=False)
    ann = osp.join(data, 'dataset_synthetic.json')
    cfg = str(root / 'tiny.py')
    with open(cfg, 'w') as f:
        f.write(CONFIG.format(repo=REPO, ann=ann))
    torch.manual_seed(0)
    model = init_retriever(cfg)
    ckpt = str(root / 'tiny.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, ckpt)
    index_dir = str(root / 'index')
    _tool().main(['index', cfg, ckpt, osp.join(data, 'images'), index_dir,
                  '--no-progress'])
    return dict(root=root, cfg=cfg, ckpt=ckpt, index=index_dir,
                images=osp.join(data, 'images'))


def _copy(built, tmp_path):
    dst = str(tmp_path / 'index')
    shutil.copytree(built['index'], dst)
    return dst


def _model_args(built):
    return ['--config', built['cfg'], '--checkpoint', built['ckpt']]


# ------------------------------------------- the index names a model
def test_index_model_is_not_run_without_opt_in(built, capsys):
    with pytest.raises(SystemExit) as err:
        _tool().main(['text', built['index'], 'a runway'])
    assert '--use-index-model' in str(err.value)
    assert '--config' in str(err.value)


def test_use_index_model_checks_sha256(built, tmp_path):
    index = _copy(built, tmp_path)
    ckpt = str(tmp_path / 'swapped.pth')
    shutil.copy(built['ckpt'], ckpt)
    meta_path = osp.join(index, 'meta.json')
    meta = json.load(open(meta_path))
    meta['identity']['checkpoint'] = ckpt
    json.dump(meta, open(meta_path, 'w'))
    with open(ckpt, 'ab') as f:  # the file named by the index changed
        f.write(b'payload')
    with pytest.raises(SystemExit) as err:
        _tool().main(['text', index, 'a runway', '--use-index-model'])
    assert 'swapped.pth' in str(err.value) and 'sha256' in str(err.value)


def test_use_index_model_works_when_unchanged(built, capsys):
    _tool().main(['text', built['index'], 'a runway', '--use-index-model',
                  '-k', '2'])
    assert 'query: a runway' in capsys.readouterr().out


# ---------------------------------------------------- damaged indexes
def _truncate(path):
    with open(path, 'r+b') as f:
        f.truncate(os.path.getsize(path) // 2)


def _reorder(path):
    lines = open(path).read().splitlines()
    open(path, 'w').write('\n'.join(lines[::-1]) + '\n')


def _drop_line(path):
    lines = open(path).read().splitlines()
    open(path, 'w').write('\n'.join(lines[1:]) + '\n')


# (id, file, damage, expected error, parts of the message)
DAMAGE_CASES = [
    ('embeddings-missing', 'embeddings.npy', os.remove, FileNotFoundError,
     ['embeddings.npy', 'missing']),
    ('embeddings-truncated', 'embeddings.npy', _truncate, ValueError,
     ['embeddings.npy', 'truncated']),
    ('files-missing', 'files.txt', os.remove, FileNotFoundError,
     ['files.txt', 'missing']),
    ('files-truncated', 'files.txt', _drop_line, ValueError,
     ['files.txt', 'changed']),
    ('files-reordered', 'files.txt', _reorder, ValueError,
     ['files.txt', 'wrong files']),
    ('meta-corrupt', 'meta.json', lambda p: open(p, 'w').write('{"ide'),
     ValueError, ['meta.json', 'not valid JSON']),
    ('meta-keys-missing', 'meta.json', lambda p: open(p, 'w').write('{}'),
     ValueError, ['meta.json', 'expected the keys']),
]


@pytest.mark.parametrize(
    'name,damage,error,parts', [c[1:] for c in DAMAGE_CASES],
    ids=[c[0] for c in DAMAGE_CASES])
def test_damaged_index_fails_naming_the_file(built, tmp_path, name, damage,
                                             error, parts):
    index = _copy(built, tmp_path)
    damage(osp.join(index, name))
    with pytest.raises(error) as err:
        _tool().main(['text', index, 'a runway'] + _model_args(built))
    for part in parts:
        assert part in str(err.value), (part, str(err.value))


def test_any_file_name_round_trips(built, tmp_path):
    from rsitr_mm.apis import init_retriever
    src = osp.join(built['images'], list_images(built['images'])[0])
    odd = str(tmp_path / 'two\nlines, "quoted" \u00e9.png')
    shutil.copy(src, odd)
    model = init_retriever(built['cfg'], built['ckpt'])
    index = ImageIndex.build(model, [odd, src], str(tmp_path / 'idx'),
                             progress=False)
    again = ImageIndex.load(str(tmp_path / 'idx'))
    assert again.files == [odd, src] == index.files


# ----------------------------------------------------- concurrent builds
def test_second_build_into_a_locked_folder_fails(built, tmp_path):
    index_dir = str(tmp_path / 'busy')
    os.makedirs(index_dir)
    with open(osp.join(index_dir, '.lock'), 'a') as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)  # another build runs
        with pytest.raises(RuntimeError) as err:
            _tool().main(['index', built['cfg'], built['ckpt'],
                          built['images'], index_dir, '--no-progress'])
    assert 'busy' in str(err.value) and 'another process' in str(err.value)
    assert sorted(os.listdir(index_dir)) == ['.lock']  # nothing written


# ------------------------------------------------------------ queries
@pytest.mark.parametrize('query', ['', '   ', '\t\n'],
                         ids=['empty', 'spaces', 'whitespace'])
def test_empty_query_is_refused(built, query):
    with pytest.raises(ValueError, match='empty'):
        _tool().main(['text', built['index'], query] + _model_args(built))


def test_all_unknown_words_warn(built, capsys):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        _tool().main(['text', built['index'], 'zzqx blorf'] +
                     _model_args(built))
    msgs = [str(w.message) for w in caught]
    assert any('vocabulary' in m and 'zzqx blorf' in m for m in msgs), msgs


def test_all_unknown_words_are_flagged_in_the_api_result(built):
    from rsitr_mm.apis import init_retriever, search_by_text
    model = init_retriever(built['cfg'], built['ckpt'])
    index = ImageIndex.load(built['index'])
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        result = search_by_text(model, index, ['zzqx blorf', 'a road'], k=2)
    assert result.unknown_queries == [0]


# ------------------------------------ an index folder is data only (#22)
def _plant_payload(index, marker):
    """An edited meta.json whose recorded cfg_options name os.system."""
    meta_path = osp.join(index, 'meta.json')
    meta = json.load(open(meta_path))
    meta['identity']['cfg_options'] = {
        'model': {'_delete_': True, 'type': 'os.system',
                  'command': f'touch {marker}'}}
    json.dump(meta, open(meta_path, 'w'))


@pytest.mark.parametrize('command', ['text', 'image'])
def test_recorded_cfg_options_are_never_applied(built, tmp_path, capsys,
                                                command):
    index = _copy(built, tmp_path)
    marker = str(tmp_path / 'PWNED')
    _plant_payload(index, marker)
    query = 'a runway' if command == 'text' else osp.join(
        built['images'], list_images(built['images'])[0])
    _tool().main([command, index, query, '-k', '2'] + _model_args(built))
    assert not osp.exists(marker)
    captured = capsys.readouterr()
    assert 'query:' in captured.out
    # compared and shown, never applied
    assert 'os.system' in captured.err and 'not applied' in captured.err


def test_recorded_cfg_options_not_applied_with_use_index_model(
        built, tmp_path):
    index = _copy(built, tmp_path)
    marker = str(tmp_path / 'PWNED')
    _plant_payload(index, marker)
    _tool().main(['text', index, 'a runway', '--use-index-model', '-k', '1'])
    assert not osp.exists(marker)


def test_serve_and_api_never_apply_recorded_options(built, tmp_path,
                                                    load_tool):
    from rsitr_mm.apis import init_retriever, search_by_text
    index = _copy(built, tmp_path)
    marker = str(tmp_path / 'PWNED')
    _plant_payload(index, marker)
    serve = load_tool('serve')
    server = serve.build_server(serve.parse_args(
        [index, '--port', '0'] + _model_args(built)))
    server.server_close()
    loaded = ImageIndex.load(index)
    model = init_retriever(built['cfg'], built['ckpt'])
    search_by_text(model, loaded, 'a runway', k=1)
    assert not osp.exists(marker)


# --------------------------------------------------- index integrity
def _edit_rows(index, edit):
    import numpy as np
    path = osp.join(index, 'embeddings.npy')
    emb = np.load(path)
    edit(emb)
    np.save(path, emb)


def _nan_row(emb):
    emb[2, 0] = float('nan')


def _inf_row(emb):
    emb[1, 3] = float('inf')


def _zero_row(emb):
    emb[3] = 0


def _swap_rows(emb):
    emb[[0, 1]] = emb[[1, 0]]


def _reverse_rows(emb):
    emb[:] = emb[::-1].copy()


def _meta_edit(change):
    def edit(index):
        path = osp.join(index, 'meta.json')
        meta = json.load(open(path))
        change(meta)
        json.dump(meta, open(path, 'w'))
    return edit


def _non_utf8(index):
    with open(osp.join(index, 'files.txt'), 'ab') as f:
        f.write(b'"\xff\xfe.png"\n')


# (id, damage of the index folder, error, parts of the message)
INTEGRITY_CASES = [
    ('nan-row', lambda i: _edit_rows(i, _nan_row), ValueError,
     ['embeddings.npy', 'row 2', 'non-finite', '.png']),
    ('inf-row', lambda i: _edit_rows(i, _inf_row), ValueError,
     ['embeddings.npy', 'row 1', 'non-finite']),
    ('zero-row', lambda i: _edit_rows(i, _zero_row), ValueError,
     ['embeddings.npy', 'row 3', 'only zeros']),
    ('swapped-rows', lambda i: _edit_rows(i, _swap_rows), ValueError,
     ['embeddings.npy', 'rows 0-', 'changed since the index was built']),
    ('reversed-rows', lambda i: _edit_rows(i, _reverse_rows), ValueError,
     ['embeddings.npy', 'changed since the index was built']),
    ('files-hash-absent', _meta_edit(lambda m: m.pop('files_sha256')),
     ValueError, ['meta.json', 'files_sha256', 'mandatory']),
    ('embeddings-hash-absent',
     _meta_edit(lambda m: m.pop('embeddings_sha256')), ValueError,
     ['meta.json', 'embeddings_sha256']),
    ('format-1', _meta_edit(lambda m: m.update(format_version=1)),
     ValueError, ['meta.json', 'format 1', 'migrate']),
    ('format-unknown', _meta_edit(lambda m: m.update(format_version=99)),
     ValueError, ['meta.json', 'unknown format_version 99']),
    ('files-not-utf8', _non_utf8, ValueError,
     ['files.txt', 'not UTF-8']),
]


@pytest.mark.parametrize(
    'damage,error,parts', [c[1:] for c in INTEGRITY_CASES],
    ids=[c[0] for c in INTEGRITY_CASES])
def test_damaged_index_data_is_refused(built, tmp_path, damage, error,
                                       parts):
    index = _copy(built, tmp_path)
    damage(index)
    with pytest.raises(error) as err:
        _tool().main(['text', index, 'a runway'] + _model_args(built))
    for part in parts:
        assert part in str(err.value), (part, str(err.value))


def test_non_finite_embeddings_are_refused_at_build(built, tmp_path):
    import torch

    from rsitr_mm.apis import init_retriever
    model = init_retriever(built['cfg'], built['ckpt'])
    state = model.state_dict()
    key = next(k for k in state if k.startswith('image_proj') and
               k.endswith('weight'))
    state[key] = torch.full_like(state[key], float('nan'))
    ckpt = str(tmp_path / 'nan.pth')
    torch.save({'state_dict': state, 'meta': {}}, ckpt)
    with pytest.raises(ValueError) as err:
        _tool().main(['index', built['cfg'], ckpt, built['images'],
                      str(tmp_path / 'idx'), '--no-progress',
                      '--num-workers', '0'])
    first = list_images(built['images'])[0]
    assert 'non-finite' in str(err.value) and first in str(err.value)
    assert 'row 0' in str(err.value)


def test_migrate_is_explicit(built, tmp_path, capsys):
    index = _copy(built, tmp_path)
    _meta_edit(lambda m: (m.update(format_version=2),
                          m.pop('embeddings_sha256')))(index)
    with pytest.raises(ValueError, match='migrate'):
        ImageIndex.load(index)
    _tool().main(['migrate', index])
    assert 'migrated to format 3' in capsys.readouterr().out
    again = ImageIndex.load(index)
    assert again.files == ImageIndex.load(built['index']).files


def test_migrate_reads_format_1_lists(built, tmp_path):
    index = _copy(built, tmp_path)
    files = ImageIndex.load(built['index']).files
    with open(osp.join(index, 'files.txt'), 'w') as f:
        f.write(''.join(n + '\n' for n in files))
    _meta_edit(lambda m: (m.update(format_version=1),
                          m.pop('files_sha256'),
                          m.pop('embeddings_sha256')))(index)
    assert ImageIndex.migrate(index).files == files


def test_stale_temp_files_are_removed_on_next_build(built, tmp_path):
    index = _copy(built, tmp_path)
    stale = ['.meta.json.k1ll3d.tmp', '.files.txt.x9.tmp',
             'embeddings.npy.tmp.npy']
    for name in stale:
        open(osp.join(index, name), 'w').write('half')
    open(osp.join(index, 'notes.tmp'), 'w').write('mine')
    with pytest.warns(UserWarning, match='interrupted build'):
        _tool().main(['index', built['cfg'], built['ckpt'], built['images'],
                      index, '--no-progress', '--num-workers', '0'])
    left = os.listdir(index)
    assert not set(stale) & set(left)
    assert 'notes.tmp' in left  # not ours: left alone
