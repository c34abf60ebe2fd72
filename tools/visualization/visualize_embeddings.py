# Copyright (c) rsitr_mm contributors. All rights reserved.
"""t-SNE of a retriever's image embeddings, coloured by dominant object.

Usage::

    python tools/visualization/visualize_embeddings.py CONFIG CHECKPOINT \
        --out OUT.png [--split test] [--max-images 500] \
        [--method auto|tsne|pca] [--ann-file ANN.json] [--top-k 50] \
        [--device cpu]
    # an untrained model (to check a config): no CHECKPOINT
    python tools/visualization/visualize_embeddings.py CONFIG --random-init \
        --out OUT.png

Images of ``{split}_dataloader``'s dataset are read with the config's test
pipeline whatever the split (no training augmentation), encoded with
``model.extract_feat``, and each is coloured by the dominant noun of its
object prior: in the vocabulary of the model's ``ObjectSemanticClusterHead``
when it has one (else the ``--top-k`` nouns of the training split), counted
in the captions of the shown split. ``--method auto`` (= ``tsne``) uses
scikit-learn's t-SNE, ``pca`` a deterministic linear projection. The tool
also prints the 10-nearest-neighbour agreement of the dominant objects (the
share of an image's neighbours in embedding space with the same dominant
object), a number for comparing checkpoints.

(``tools/visualize_embeddings.py CONFIG CHECKPOINT|none``, the old path,
still works and forwards here; ``none`` becomes ``--random-init``.)
"""
import argparse
import copy
import os.path as osp
import sys
from typing import List, Optional

import rsitr_mm  # noqa: F401  (registers modules, applies stack fixes)
import numpy as np
import torch
from mmengine.runner import Runner

from rsitr_mm.apis import init_retriever
from rsitr_mm.apis.model_loading import model_pipeline
from rsitr_mm.datasets.object_priors import build_object_priors
from rsitr_mm.models.heads.osfcm_head import ObjectSemanticClusterHead
from rsitr_mm.visualization.embeddings import (draw_embedding_scatter,
                                               reduce_to_2d)
from rsitr_mm.visualization.tool_args import (add_model_args,
                                              checked_checkpoint)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description='t-SNE of image embeddings by dominant object')
    add_model_args(parser)
    parser.add_argument('--out', required=True, help='output PNG path')
    parser.add_argument('--split', default='test',
                        choices=['train', 'val', 'test'],
                        help='whose images (read with the test pipeline)')
    parser.add_argument('--max-images', type=int, default=500)
    parser.add_argument('--method', default='auto',
                        choices=['auto', 'tsne', 'pca'])
    parser.add_argument('--perplexity', type=float, default=30.0)
    parser.add_argument(
        '--ann-file', help='caption json (default: the dataset\'s)')
    parser.add_argument('--top-k', type=int, default=50,
                        help='vocab size when the model has no OSFCM head')
    parser.add_argument('--seed', type=int, default=0)
    return parser


def with_pipeline(dataset_cfg: dict, pipeline: List[dict]) -> dict:
    """Copy of ``dataset_cfg`` whose dataset(s) use ``pipeline``.

    Wrapped datasets (``dataset=...`` or ``datasets=[...]``) get it on
    every inner dataset.
    """
    dataset_cfg = copy.deepcopy(dict(dataset_cfg))
    if 'datasets' in dataset_cfg:
        dataset_cfg['datasets'] = [
            with_pipeline(d, pipeline) for d in dataset_cfg['datasets']
        ]
    elif 'dataset' in dataset_cfg:
        dataset_cfg['dataset'] = with_pipeline(dataset_cfg['dataset'],
                                               pipeline)
    else:
        dataset_cfg['pipeline'] = copy.deepcopy(pipeline)
    return dataset_cfg


def loader_cfg_with_test_pipeline(model, cfg, split: str) -> dict:
    """``{split}_dataloader`` reading its images with the test pipeline.

    The pipeline is the model's test pipeline without ``PackInputs``
    (``model.test_pipeline_cfg``) plus a ``PackInputs`` that keeps the image
    path, so a ``train`` split is drawn without training augmentation.
    """
    key = f'{split}_dataloader'
    if cfg.get(key, None) is None:
        raise KeyError(f'visualize_embeddings: the config has no {key}.')
    loader_cfg = copy.deepcopy(cfg[key])
    pipeline = model_pipeline(model) + [
        dict(type='PackInputs', meta_keys=['img_path', 'filename'])
    ]
    loader_cfg['dataset'] = with_pipeline(loader_cfg['dataset'], pipeline)
    loader_cfg['sampler'] = dict(type='DefaultSampler', shuffle=False)
    loader_cfg.pop('batch_sampler', None)
    loader_cfg['collate_fn'] = dict(type='default_collate')
    return loader_cfg


@torch.no_grad()
def collect_image_embeddings(model, dataloader, max_images: int,
                             device: str = 'cpu'):
    """Encode up to ``max_images`` distinct images of ``dataloader``.

    Returns:
        tuple: (N, D) numpy embeddings and the N image paths.
    """
    feats, paths, seen = [], [], set()
    for batch in dataloader:
        data = model.data_preprocessor(batch, False)
        out = model.extract_feat(images=data['images'].to(device))
        emb = out['image_feat'].float().cpu().numpy()
        for row, sample in enumerate(data['data_samples']):
            path = sample.metainfo.get('img_path') or sample.metainfo.get(
                'filename') or str(len(paths))
            if path in seen:
                continue
            seen.add(path)
            feats.append(emb[row])
            paths.append(path)
            if len(paths) >= max_images:
                return np.stack(feats), paths
    if not feats:
        raise RuntimeError('visualize_embeddings: the dataloader is empty.')
    return np.stack(feats), paths


def knn_agreement(feats: np.ndarray, labels: np.ndarray, k: int = 10) -> float:
    """Mean share of each labelled point's k nearest neighbours (cosine)
    that have its label; points with label -1 are ignored."""
    mask = labels >= 0
    x, y = feats[mask], labels[mask]
    if len(x) <= 1:
        return float('nan')
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    sim = x @ x.T
    np.fill_diagonal(sim, -np.inf)
    k = min(k, len(x) - 1)
    nn_idx = np.argsort(-sim, axis=1, kind='stable')[:, :k]
    return float((y[nn_idx] == y[:, None]).mean())


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    checkpoint = checked_checkpoint(parser, args)
    model = init_retriever(args.config, checkpoint, args.device,
                           args.cfg_options,
                           trust_checkpoint=args.trust_checkpoint)
    cfg = model.cfg
    dataloader = Runner.build_dataloader(
        loader_cfg_with_test_pipeline(model, cfg, args.split),
        seed=args.seed)
    ann_file = args.ann_file or getattr(dataloader.dataset, 'ann_file', None)
    if not ann_file or not osp.isfile(ann_file):
        raise FileNotFoundError('visualize_embeddings: cannot find the '
                                f'caption json ({ann_file!r}); pass '
                                '--ann-file.')
    feats, paths = collect_image_embeddings(model, dataloader,
                                            args.max_images, args.device)

    heads = [
        h for h in getattr(model, 'heads', [])
        if isinstance(h, ObjectSemanticClusterHead)
    ]
    vocab = heads[0].vocab if heads else build_object_priors(
        ann_file, split='train', top_k=args.top_k).vocab
    priors = build_object_priors(ann_file, split=args.split, vocab=vocab)
    labels = priors.dominant(priors.prior_of(paths))

    points, method = reduce_to_2d(
        feats, args.method, perplexity=args.perplexity, seed=args.seed)
    agree = knn_agreement(feats, labels)
    draw_embedding_scatter(
        points,
        labels,
        args.out,
        label_names=priors.vocab,
        title=f'{osp.basename(args.config)} ({args.split}, {len(paths)} '
        f'images, {method}'
        f'{", random init" if checkpoint is None else ""})')
    print(f'saved {args.out}: {len(paths)} images, method {method}, '
          f'{int((labels < 0).sum())} without object prior, 10-NN dominant '
          f'object agreement {agree:.3f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
