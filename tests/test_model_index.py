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


def test_every_method_model_states_its_provenance():
    """SSJDN and OSDPM entries say whether they are the paper's method (our
    reading) or carry an extension of ours; an extension carries no paper
    results, and the opt-in OSFCM extension configs are listed as such."""
    mi, _ = _load()
    by_config = {}
    for m in mi.models:
        if m.in_collection not in ('SSJDN', 'OSDPM'):
            continue
        provenance = m.metadata.data.get('Provenance', '')
        assert provenance, m.name
        if 'extension' in provenance:
            assert not m.results, m.name
        if m.results:
            assert provenance.startswith(f"the {m.in_collection} paper's"), \
                m.name
        by_config[m.config] = provenance
    for name in ('osdpm-refine_rsicd.py', 'osdpm-refine_rsitmd.py'):
        assert 'extension' in by_config['configs/' + name]
    for name in ('osdpm_rsicd.py', 'osdpm_rsitmd.py', 'ssjdn_rsitmd.py'):
        assert 'extension' not in by_config['configs/' + name]
