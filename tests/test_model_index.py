"""The model-zoo metadata (model-index.yml and the per-method metafiles).

Paths follow two conventions at once, as in mmpretrain: ``Config`` is relative
to the repository root (what ``mim`` reads), ``README`` is relative to the
metafile (what ``modelindex``'s checker resolves).
"""
import os.path as osp

import pytest

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _load():
    modelindex = pytest.importorskip('modelindex')
    import os
    cwd = os.getcwd()
    os.chdir(REPO_ROOT)  # modelindex resolves paths relative to the cwd
    try:
        mi = modelindex.load('model-index.yml')
        mi.check(silent=True)
        errors = [(e['filepath'], e['type'], list(e['errors']))
                  for e in mi.collect_check_errors() if e['errors']]
    finally:
        os.chdir(cwd)
    return mi, errors


def test_model_index_validates():
    mi, errors = _load()
    assert errors == []
    assert {c.name for c in mi.collections} == {'SSJDN', 'OSDPM', 'CLIP-RS'}


def test_every_metafile_config_exists_and_every_method_config_is_listed():
    mi, _ = _load()
    listed = {m.config for m in mi.models}
    for cfg in listed:
        assert osp.isfile(osp.join(REPO_ROOT, cfg)), cfg
    for name in ('ssjdn_rsitmd.py', 'osdpm_rsicd.py', 'osdpm_rsitmd.py',
                 'clip_vit-b32_zeroshot_rsicd.py', 'vse_r50-bigru_rsitmd.py'):
        assert 'configs/' + name in listed


def test_paper_results_are_labelled_as_the_papers():
    mi, _ = _load()
    for m in mi.models:
        if m.results:
            source = m.metadata.data.get('Results Source', '')
            assert 'paper' in source and 'not reproduced' in source, m.name
