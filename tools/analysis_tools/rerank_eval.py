# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Raw vs re-ranked recall of one checkpoint, all re-rankers at once.

Encodes the test (or val) split once and scores the same similarity matrix
raw and with every re-ranker of
:mod:`rsitr_mm.evaluation.functional.rerank` (the numbers equal those of
``tools/test.py`` with ``test_cfg.rerank`` set, without re-encoding for
each re-ranker). Example::

    python tools/analysis_tools/rerank_eval.py CONFIG CHECKPOINT \
        --out rerank.json

Re-rankers use the other test queries (transductive): report them as such.
"""
import argparse
import json
import sys

import rsitr_mm  # noqa: F401  (registers modules)
import torch
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmengine.runner import Runner, load_checkpoint
from mmpretrain.registry import MODELS

from rsitr_mm.engine.data_root import merge_cfg_options
from rsitr_mm.engine.runners import encode_loader
from rsitr_mm.evaluation import build_reranker, retrieval_recall
from rsitr_mm.evaluation.functional.rerank import merge_directions

#: (label, rerank config) evaluated by default.
DEFAULT_RERANKERS = (
    ('inverted_softmax T=0.05',
     dict(type='inverted_softmax', temperature=0.05)),
    ('dual_softmax T=0.05', dict(type='dual_softmax', temperature=0.05)),
    ('qb_norm T=0.05 k=1', dict(type='qb_norm', temperature=0.05, k=1)),
    ('k_reciprocal k=10 lam=0.5', dict(type='k_reciprocal', k=10, lam=0.5)),
)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Raw vs re-ranked retrieval recall of a checkpoint.')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument(
        '--split',
        choices=['test', 'val'],
        default='test',
        help="evaluated loader: test_dataloader or val_dataloader")
    parser.add_argument('--out', help='write the rows to this json file')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, help='config edits')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    merge_cfg_options(cfg, args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    model = MODELS.build(cfg.model)
    load_checkpoint(model, args.checkpoint, map_location='cpu')
    model.eval()
    loader_cfg = cfg[f'{args.split}_dataloader']
    loader_cfg.num_workers = 0
    loader_cfg.pop('persistent_workers', None)
    loader = Runner.build_dataloader(loader_cfg)
    image_feat, text_feat = encode_loader(model, loader)
    with torch.no_grad():
        sim = model.compute_similarity(image_feat, text_feat).float().cpu()
    cpi = loader.dataset.text_size // loader.dataset.img_size
    rows = [dict(rerank='raw', **retrieval_recall(sim, cpi))]
    for label, rcfg in DEFAULT_RERANKERS:
        i2t, t2i = build_reranker(rcfg)(sim)
        merged = merge_directions(
            retrieval_recall(i2t, cpi), retrieval_recall(t2i, cpi))
        rows.append(dict(rerank=label, **merged))
    cols = [
        'i2t_R@1', 'i2t_R@5', 'i2t_R@10', 't2i_R@1', 't2i_R@5', 't2i_R@10',
        'mR', 'rsum'
    ]
    print(f'{args.split}: {loader.dataset.img_size} images, '
          f'{loader.dataset.text_size} captions')
    print('| rerank | ' + ' | '.join(cols) + ' |')
    print('|---|' + '---:|' * len(cols))
    for row in rows:
        print(f"| {row['rerank']} | " + ' | '.join(f'{row[c]:.2f}'
                                                   for c in cols) + ' |')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
