# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Statistics of tools/analysis_tools/run_ablation.py (no training)."""
import os.path as osp

import numpy as np
import pytest
import torch

from rsitr_mm.evaluation import retrieval_recall


@pytest.fixture(scope='module')
def ra(load_tool):
    return load_tool('analysis_tools', 'run_ablation')


def test_ranks_reproduce_the_exact_metric(ra):
    g = torch.Generator().manual_seed(0)
    sim = torch.randn(12, 60, generator=g)
    sim[3, 17] = sim[3, 15]  # a tie
    sim[:, ::5] += 1.5 * torch.eye(12)  # some structure
    i2t, t2i = ra.gold_ranks(sim)
    ours = ra.metrics_from_hits(ra.hit_table(i2t, t2i))
    ref = retrieval_recall(sim)
    assert np.allclose(ours, [ref[k] for k in ra.METRIC_KEYS])


def test_hit_table_by_hand(ra):
    i2t = np.array([0, 4, 20])
    t2i = np.array([0, 0, 1, 6, 30] + [9] * 5 + [2] * 5)
    hits = ra.hit_table(i2t, t2i)
    assert hits[:, 0].tolist() == [1, 0, 0]  # i2t R@1
    assert hits[:, 1].tolist() == [1, 1, 0]  # i2t R@5
    assert hits[:, 3].tolist() == [2, 0, 0]  # t2i R@1 caption counts
    assert hits[:, 5].tolist() == [4, 5, 5]  # t2i R@10
    m = ra.metrics_from_hits(hits)
    assert m[0] == pytest.approx(100 / 3) and m[3] == pytest.approx(
        20 / 1.5 / 10 * 10)
    assert m[-1] == pytest.approx(m[:6].sum())
    with pytest.raises(ValueError, match='t2i_rank'):
        ra.hit_table(i2t, t2i[:-1])


def test_paired_bootstrap(ra):
    rng = np.random.default_rng(0)
    n = 200
    base = [(rng.integers(0, 30, n), rng.integers(0, 30, 5 * n))
            for _ in range(3)]
    better = [(np.maximum(a - 3, 0), np.maximum(b - 3, 0)) for a, b in base]
    h_base = [ra.hit_table(a, b) for a, b in base]
    h_better = [ra.hit_table(a, b) for a, b in better]
    same = ra.paired_bootstrap(h_base, h_base, num_samples=200)
    assert same['rsum']['diff'] == 0
    assert same['rsum']['low'] == 0 and same['rsum']['high'] == 0
    up = ra.paired_bootstrap(h_better, h_base, num_samples=500, seed=1)
    observed = np.mean([
        ra.metrics_from_hits(a)[-1] - ra.metrics_from_hits(b)[-1]
        for a, b in zip(h_better, h_base)
    ])
    assert up['rsum']['diff'] == pytest.approx(observed)
    assert 0 < up['rsum']['low'] <= up['rsum']['diff'] <= up['rsum']['high']
    assert up['rsum']['p_le0'] == 0
    down = ra.paired_bootstrap(h_base, h_better, num_samples=500, seed=1)
    assert down['rsum']['high'] < 0
    # deterministic for a seed
    again = ra.paired_bootstrap(h_better, h_base, num_samples=500, seed=1)
    assert again == up
    with pytest.raises(ValueError, match='same non-zero number'):
        ra.paired_bootstrap(h_base, h_base[:2])


def test_mean_sd_and_table(ra):
    assert ra.mean_sd([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert ra.mean_sd([5.0]) == (5.0, 0.0)
    summary_row = {m: dict(mean=1.0, sd=0.5) for m in ra.METRIC_KEYS}
    ci = dict(diff=-1.0, low=-2.0, high=0.5, p_le0=0.9)
    table = ra.format_markdown(
        dict(
            seeds=[0, 1, 2],
            bootstrap_samples=100,
            notes=['switch-offs skipped'],
            rows=[
                dict(key='full', name='full', summary=summary_row,
                     seeds=[0, 1, 2]),
            ],
            contrasts=[
                dict(
                    a='full',
                    b='no-x',
                    label='full - w/o X',
                    what='X, removed',
                    seeds=[0, 1, 2],
                    seed_interval=dict(
                        rsum=dict(mean=-1.0, low=-3.0, high=1.0)),
                    hierarchical=dict(rsum=ci, mR=ci),
                    effect=False)
            ]))
    assert '| `full`: full | 3 | 1.00 +- 0.50' in table
    assert '| `full - no-x` | X, removed | 3 |' in table
    assert '| -1.00 | [-3.00, +1.00] | [-2.00, +0.50] | no |' in table
    assert 'Note: switch-offs skipped' in table


def test_seed_interval(ra):
    out = ra.seed_interval([1.0, 2.0, 3.0])
    # t(0.975, 2) = 4.303; sd 1, n 3
    assert out['mean'] == 2.0 and out['n'] == 3
    assert out['high'] - out['mean'] == pytest.approx(4.3027 / 3**0.5,
                                                      rel=1e-3)
    assert np.isnan(ra.seed_interval([1.0])['low'])


def test_hierarchical_bootstrap_covers_seed_spread(ra):
    """With seeds that disagree, the seeds x images interval is wider than
    the images-only one and includes 0; with identical seeds both agree."""
    rng = np.random.default_rng(0)
    n = 200

    def run(p):
        return ra.hit_table((rng.random(n) > p) * 50,
                            (rng.random(5 * n) > p) * 50)

    a = [run(0.5), run(0.2), run(0.8)]  # seed effects: large spread
    b = [run(0.5), run(0.5), run(0.5)]
    img = ra.paired_bootstrap(a, b, num_samples=400)['rsum']
    hier = ra.seed_image_bootstrap(a, b, num_samples=400)['rsum']
    assert hier['diff'] == pytest.approx(img['diff'])
    assert hier['high'] - hier['low'] > 1.5 * (img['high'] - img['low'])
    assert hier['low'] < 0 < hier['high']
    same = ra.seed_image_bootstrap(a, a, num_samples=50)['rsum']
    assert same['low'] == same['high'] == 0.0
    with pytest.raises(ValueError):
        ra.seed_image_bootstrap(a, b[:2])


def test_knn_purity_and_iterations_to(ra):
    emb = np.array([[1, 0], [1, 0.1], [1, -0.1], [0, 1], [0.1, 1],
                    [-0.1, 1], [5, 5]], float)
    labels = np.array([0, 0, 0, 1, 1, 1, -1])
    assert ra.knn_purity(emb, labels, k=2) == 1.0
    assert ra.knn_purity(emb, np.array([0, 1, 0, 1, 0, 1, -1]), k=2) < 0.5
    over = ra.category_overlap(emb, labels)
    assert over['knn_purity'] == pytest.approx(1.0, abs=0) or \
        np.isnan(over['knn_purity'])
    assert over['silhouette'] > 0.9
    assert ra.iterations_to([[0, 1.0], [10, 3.0], [20, 5.0]], 4.0) == 15.0
    assert ra.iterations_to([[0, 5.0]], 4.0) == 0.0
    assert np.isnan(ra.iterations_to([[0, 1.0], [10, 2.0]], 4.0))


def test_declared_variants_and_contrasts(ra):
    for method, variants in ra.VARIANTS.items():
        keys = [v.key for v in variants]
        assert variants[0].role == 'reference' and len(set(keys)) == len(keys)
        rows = set(keys) | {
            f'{v.key}|off_{n}'
            for v in variants for n in v.switch_offs
        }
        for a, b, _ in ra.CONTRASTS[method]:
            assert a in rows and b in rows, (a, b)
        # every removal, the base and every control is contrasted with
        # the reference; every switch-off is scored somewhere
        for v in variants[1:]:
            assert any(v.key in (a, b) for a, b, _ in ra.CONTRASTS[method])
        for v in variants:
            for n in v.switch_offs:
                assert any(a == f'{v.key}|off_{n}'
                           for a, _, _ in ra.CONTRASTS[method])
    assert 'bsd_salience' in ra.SWITCH_OFFS['ssjdn']
    assert {'dapn_context', 'dapn_region'} <= set(ra.SWITCH_OFFS['osdpm'])


def test_switch_off_is_optional(ra):
    fn, why = ra.load_switch_off()
    assert (fn is None) != (why is None)
    assert fn is None or callable(fn)


@pytest.fixture(scope='module')
def tiny_assets(tmp_path_factory):
    from rsitr_mm.datasets.synthetic import generate_testbed
    from rsitr_mm.models.utils import make_tiny_clip_dir
    root = tmp_path_factory.mktemp('testbed')
    data = generate_testbed(
        str(root), image_size=64, target_split=(8, 2, 4), pretrain_images=2)
    clip = make_tiny_clip_dir(str(root / 'clip'), layers=4)
    return osp.join(data, 'target'), clip


@pytest.mark.parametrize('method', ['osdpm', 'ssjdn'])
def test_every_variant_config_builds_and_steps(ra, tiny_assets, method,
                                               tmp_path):
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS
    from mmpretrain.structures import DataSample

    import rsitr_mm  # noqa: F401
    target, clip = tiny_assets
    for variant in ra.VARIANTS[method]:
        key, config = variant.key, variant.config
        cfg = ra.build_config(
            config,
            target,
            clip,
            seed=0,
            epochs=2,
            work_dir=str(tmp_path / key))
        assert cfg.train_cfg.max_epochs == 2 and cfg.val_cfg is None
        assert cfg.param_scheduler[-1]['end'] == 2 * cfg.iters_per_epoch
        assert cfg.model.image_encoder.pretrained == clip
        m = cfg.model.to_dict()
        # the tiny CLIP is 32 wide (the testbed start is 128 wide)
        m['embed_dim'] = 32
        if m.get('image_neck'):
            neck = m['image_neck']
            neck['in_channels'] = ([32] * 3 if isinstance(
                neck['in_channels'], list) else 32)
            neck.update(
                {k: 32
                 for k in ('embed_dim', 'out_channels') if k in neck})
        if m.get('image_in_channels'):
            m['image_in_channels'] = 32
        for head in m.get('heads') or []:
            head.update(
                {k: 32
                 for k in ('in_channels', 'embed_dim') if k in head})
            if 'semantic_dim' in head:
                head['semantic_dim'] = 8
        init_default_scope('mmpretrain')
        model = MODELS.build(m)
        samples = []
        for i in range(4):
            s = DataSample().set_gt_label(i % 2)
            s.set_field(f'two red ships left of a road {i}', 'text')
            s.set_field(i, 'image_id')
            samples.append(s)
        data = model.data_preprocessor(
            dict(
                inputs=torch.randint(
                    0, 255, (4, 3, 32, 32), dtype=torch.uint8),
                data_samples=samples), True)
        losses = model(**data, mode='loss')
        assert torch.isfinite(sum(losses.values())), key


def test_a_stale_run_is_not_reused(ra, tiny_assets, tmp_path):
    """A stored run is reused only when variant, seed, resolved config and
    source hash match; a run of other code or another config is moved
    aside and re-run."""
    import json

    import rsitr_mm  # noqa: F401
    target, clip = tiny_assets
    variant = {v.key: v for v in ra.VARIANTS['ssjdn']}['base']
    run_dir = str(tmp_path / 'base' / 'seed_0')
    opts = {'model.embed_dim': 32, 'train_dataloader.batch_size': 8}

    def run(source, options=opts):
        return ra.run_one(variant, target, clip, 0, 1, run_dir, None,
                          options, source=source, val_every=0)

    first = run('a' * 64)
    assert 'base' in first['scores'] and 'train_seconds' in first
    assert first['provenance']['source_hash'] == 'a' * 64
    mtime = osp.getmtime(osp.join(run_dir, 'result.json'))
    reused = run('a' * 64)  # same code, same config: nothing re-run
    assert reused['provenance'] == first['provenance']
    assert reused['train_seconds'] == first['train_seconds']
    assert osp.getmtime(osp.join(run_dir, 'result.json')) == mtime
    again = run('b' * 64)  # other code: moved aside, re-run
    assert osp.isdir(run_dir + '.stale-0')
    with open(osp.join(run_dir + '.stale-0', 'result.json')) as f:
        assert json.load(f)['provenance']['source_hash'] == 'a' * 64
    assert again['provenance']['source_hash'] == 'b' * 64
    opts2 = dict(opts, **{'model.temperature': 0.05})
    run('b' * 64, opts2)  # other config
    assert osp.isdir(run_dir + '.stale-1')
    runs, notes = ra.load_runs(
        'ssjdn', str(tmp_path), [0],
        {(v.key, 0): dict(config_key='x', source_hash='b' * 64)
         for v in ra.VARIANTS['ssjdn']})
    assert not runs and 'stale' in notes[0]
    # the current config key of a seed matches the run made with that seed
    cfg = ra.build_config(variant.config, target, clip, 0, 1, '', opts2)
    runs, notes = ra.load_runs(
        'ssjdn', str(tmp_path), [0], {
            (v.key, 0): dict(
                config_key=ra.config_key(cfg, target, clip),
                source_hash='b' * 64)
            for v in ra.VARIANTS['ssjdn']
        })
    assert ('base', 0) in runs and not notes
