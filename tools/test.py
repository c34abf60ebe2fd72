# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Evaluate a checkpoint: ``python tools/test.py CONFIG [CHECKPOINT]``.

Prints the six recalls, mR and rsum as a table. Without a checkpoint the
model is evaluated as built from the config (e.g. zero-shot pretrained
weights named in the config).

Outputs, as in mmpretrain's ``tools/test.py``::

    --out FILE --out-item metrics   # the metrics (json, yaml or pkl)
    --out FILE.pkl [--out-item pred]
                                    # the predictions: similarity matrix,
                                    # gold ranks and top-k lists of every
                                    # query (format: docs/predictions.md)
    --show-dir DIR [--show-num 10]  # retrieval grids of the first queries

``--out-item`` defaults to ``pred`` as in mmpretrain, except for a ``.json``
file, which keeps the metrics (what ``--out metrics.json`` always wrote).

The checkpoint is loaded strictly: a missing, unexpected or mis-shaped key
fails with the file and the keys named (``--non-strict`` loads the matching
keys only). It is unpickled without running code (``weights_only`` plus the
globals mmengine writes); ``--trust-checkpoint`` allows any pickle, for
files from a source you trust.
"""
import argparse
import contextlib
import json
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence

import rsitr_mm  # noqa: F401  (registers modules, applies stack fixes)
import mmengine
import numpy as np
import torch
from mmengine.config import Config
from mmengine.dist import is_main_process
from mmengine.evaluator import BaseMetric
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from rsitr_mm.engine.config_check import CfgOptionsAction
from rsitr_mm.engine.data_root import merge_cfg_options
from rsitr_mm.engine.launch import (default_work_dir, ensure_local_rank,
                                    finish_cpu_distributed,
                                    format_retrieval_table,
                                    set_dataloader_defaults, setup_launcher)
from rsitr_mm.engine.preflight import run_preflight
from rsitr_mm.evaluation.functional.retrieval_recall import gold_ranks
from rsitr_mm.utils.safe_load import check_state_dict, trust_checkpoints
from rsitr_mm.utils.threads import (add_threads_arg, loader_workers,
                                   setup_threads)

#: version of the ``--out-item pred`` file layout (docs/predictions.md)
PRED_FORMAT_VERSION = 1
#: length of the per-query top-k lists in the ``pred`` file
PRED_TOPK = 10
#: results drawn per query by ``--show-dir``
SHOW_TOPK = 5


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test a retrieval model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', nargs='?', help='checkpoint file')
    parser.add_argument('--work-dir', help='where to save the logs')
    parser.add_argument(
        '--out',
        help='write the metrics or the predictions (see --out-item) to this '
        'file')
    parser.add_argument(
        '--out-item',
        choices=['metrics', 'pred'],
        help='what --out holds: the metrics, or the predictions (similarity '
        'matrix, gold ranks, top-k lists; a .pkl file, see '
        'docs/predictions.md). Default: pred, as in mmpretrain; metrics for '
        'a .json file')
    parser.add_argument(
        '--show-dir',
        help='save retrieval grids of the first --show-num queries of each '
        'direction here (ground-truth results titled green, others red)')
    parser.add_argument(
        '--show-num',
        type=int,
        default=10,
        help='queries drawn per direction by --show-dir (default: 10)')
    parser.add_argument(
        '--amp', action='store_true', help='encode under autocast')
    parser.add_argument(
        '--non-strict',
        action='store_true',
        help='load the checkpoint keys that fit the model and ignore the '
        'missing, unexpected and mis-shaped ones (default: fail)')
    parser.add_argument(
        '--trust-checkpoint',
        action='store_true',
        help='unpickle checkpoints with full pickle, which can run code '
        'from the file (default: only tensors and the values mmengine '
        'writes)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=CfgOptionsAction,
        help='override config settings')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    add_threads_arg(parser)
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if args.out_item is not None and args.out is None:
        parser.error('--out-item needs --out FILE')
    if args.out is not None and args.out_item is None:
        args.out_item = 'metrics' if args.out.lower().endswith('.json') \
            else 'pred'
    if args.out_item == 'pred' and not args.out.lower().endswith(
            ('.pkl', '.pickle')):
        parser.error(f'--out-item pred writes a pickle; give a .pkl file, '
                     f'not {args.out!r}')
    if args.show_num < 1:
        parser.error(f'--show-num must be >= 1, got {args.show_num}')
    ensure_local_rank(args.local_rank)
    return args


def check_checkpoint(runner: Runner, filename: str) -> None:
    """Fail unless ``filename`` holds exactly the keys/shapes of the model.

    The runner then loads it as usual (``load_from``, after ``before_run``).
    """
    from mmengine.runner.checkpoint import _load_checkpoint
    check_state_dict(runner.model,
                     _load_checkpoint(filename, map_location='cpu'),
                     filename, hint='--non-strict')


class SimilarityCollector(BaseMetric):
    """Keeps the raw similarity matrix the test loop scores.

    Added to the test evaluator next to ``RSRetrievalMetric`` (as
    mmpretrain's ``tools/test.py`` adds ``DumpResults``); it reports no
    metric. The loop feeds the raw matrix first, then (with
    ``test_cfg.rerank``) the re-ranked ones, which are not kept.
    """
    default_prefix = 'collect'

    def __init__(self) -> None:
        super().__init__(collect_device='cpu')
        self.similarity: Optional[torch.Tensor] = None

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            self.results.append(sample['similarity'].detach().float().cpu())

    def compute_metrics(self, results: List) -> Dict[str, float]:
        if self.similarity is None and results:
            self.similarity = results[0]
        return {}


def _captions_per_image(evaluator, sim: torch.Tensor) -> int:
    for metric in evaluator.metrics:
        if hasattr(metric, 'captions_per_image'):
            return int(metric.captions_per_image)
    return sim.shape[1] // max(sim.shape[0], 1)


def _dataset_items(dataset, num_images: int, num_texts: int):
    """Image paths (by ``image_id``) and captions (by ``gt_text_id``)."""
    paths: List[Optional[str]] = [None] * num_images
    captions: List[Optional[str]] = [None] * num_texts
    for idx in range(len(dataset)):
        info = dataset.get_data_info(idx)
        image_id = info.get('image_id')
        if image_id is not None and 0 <= int(image_id) < num_images:
            paths[int(image_id)] = info.get('img_path')
        texts = info.get('text')
        text_ids = info.get('gt_text_id')
        if isinstance(texts, str):
            texts = [texts]
        if texts is not None and text_ids is not None:
            for tid, text in zip(text_ids, texts):
                if 0 <= int(tid) < num_texts:
                    captions[int(tid)] = text
    return paths, captions


def _stable_topk(sim: torch.Tensor, k: int, chunk: int = 256) -> np.ndarray:
    """(Q, k) columns of the k best scores of every row, ties broken by the
    lower index (the tie rule of :func:`retrieval_recall`)."""
    k = min(k, sim.shape[1])
    out = []
    for a in range(0, sim.shape[0], chunk):
        order = torch.sort(sim[a:a + chunk], dim=1, descending=True,
                           stable=True)[1]
        out.append(order[:, :k])
    return torch.cat(out).numpy().astype(np.int64)


def build_predictions(sim: torch.Tensor,
                      captions_per_image: int,
                      dataset=None,
                      metrics: Optional[dict] = None,
                      topk: int = PRED_TOPK,
                      meta: Optional[dict] = None) -> Dict[str, Any]:
    """The ``--out-item pred`` record (layout: docs/predictions.md).

    Args:
        sim (torch.Tensor): (N, c * N) image-caption scores; caption ``j``
            belongs to image ``j // c``.
        captions_per_image (int): c.
        dataset (BaseDataset, optional): the test dataset, for the image
            paths and caption texts.
        metrics (dict, optional): the metrics of the run.
        topk (int): length of the top-k lists. Defaults to 10.
        meta (dict, optional): config / checkpoint of the run.

    Returns:
        dict: numpy arrays and lists only (no rsitr_mm class), so the file
        loads with ``pickle`` or ``mmengine.load`` alone.
    """
    sim = sim.detach().float().cpu()
    num_images, num_texts = sim.shape
    i2t_rank, t2i_rank = gold_ranks(sim, captions_per_image)
    paths, captions = (_dataset_items(dataset, num_images, num_texts)
                       if dataset is not None else
                       ([None] * num_images, [None] * num_texts))
    return dict(
        format_version=PRED_FORMAT_VERSION,
        similarity=sim.numpy(),
        captions_per_image=int(captions_per_image),
        image_paths=paths,
        captions=captions,
        gt_image=np.arange(num_texts, dtype=np.int64) // captions_per_image,
        i2t_rank=i2t_rank.cpu().numpy().astype(np.int64),
        t2i_rank=t2i_rank.cpu().numpy().astype(np.int64),
        i2t_topk=_stable_topk(sim, topk),
        t2i_topk=_stable_topk(sim.t(), topk),
        metrics=dict(metrics or {}),
        meta=dict(meta or {}))


def _tie_rank(scores: np.ndarray, item: int) -> int:
    """0-based rank of ``item`` in ``scores`` under the metric's tie rule
    (higher scores, then equal scores at lower indices, come first)."""
    value = scores[item]
    return int((scores > value).sum() + (scores[:item] == value).sum())


def draw_predictions(pred: Dict[str, Any], show_dir: str,
                     num: int = 10, k: int = SHOW_TOPK) -> List[str]:
    """Retrieval grids of the first ``num`` queries of each direction.

    Writes ``i2t_<image>.png`` (the query image and its top-k captions) and
    ``t2i_<caption>.png`` (the query caption and its top-k images), numbered
    as the rows of the ``pred`` record; ground-truth results are titled
    green (and framed), the others red; a gold item ranked below the top k
    is drawn with its rank, and identical captions are shown once with
    their count.

    Returns:
        list[str]: the files written.
    """
    from types import SimpleNamespace

    from rsitr_mm.visualization import (draw_caption_results,
                                        draw_image_results)
    paths, captions = pred['image_paths'], pred['captions']
    if any(p is None for p in paths) or any(c is None for c in captions):
        raise ValueError('--show-dir: the test dataset gives no img_path / '
                         'text for every image and caption, so the results '
                         'cannot be drawn')
    sim, gt_image = pred['similarity'], pred['gt_image']
    written = []
    for i in range(min(num, len(paths))):
        top = pred['i2t_topk'][i][:k]
        result = SimpleNamespace(
            queries=[paths[i]], items=[[captions[j] for j in top]],
            scores=sim[i, top][None])
        gold = [(_tie_rank(sim[i], j), captions[j], float(sim[i, j]))
                for j in np.flatnonzero(gt_image == i)]
        written.append(draw_caption_results(
            result, osp.join(show_dir, f'i2t_{i:05d}.png'),
            hits=[[gt_image[j] == i for j in top]], gold=[sorted(gold)]))
    for j in range(min(num, len(captions))):
        top = pred['t2i_topk'][j][:k]
        result = SimpleNamespace(
            queries=[captions[j]], items=[[paths[i] for i in top]],
            scores=sim[top, j][None])
        g = int(gt_image[j])
        written.append(draw_image_results(
            result, osp.join(show_dir, f't2i_{j:05d}.png'), 'text',
            hits=[[i == g for i in top]],
            gold=[(int(pred['t2i_rank'][j]), paths[g], float(sim[g, j]))]))
    return written


def write_outputs(args: argparse.Namespace, metrics: dict, runner: Runner,
                  collector: Optional[SimilarityCollector]) -> None:
    """``--out`` and ``--show-dir`` of the main process."""
    if args.out and args.out_item == 'metrics':
        if args.out.lower().endswith('.json'):
            with open(args.out, 'w', encoding='utf-8') as f:
                json.dump(metrics, f, indent=2)
        else:
            mmengine.dump(metrics, args.out)
    if collector is None:
        return
    if collector.similarity is None:
        raise RuntimeError('the test loop handed no similarity matrix to the '
                           'evaluator; --out-item pred and --show-dir need '
                           "test_cfg=dict(type='RSRetrievalTestLoop')")
    sim = collector.similarity
    pred = build_predictions(
        sim,
        _captions_per_image(runner.test_evaluator, sim),
        dataset=runner.test_dataloader.dataset,
        metrics=metrics,
        meta=dict(config=args.config, checkpoint=args.checkpoint))
    if args.out and args.out_item == 'pred':
        mmengine.dump(pred, args.out)
        print(f'predictions written to {args.out}', flush=True)
    if args.show_dir:
        written = draw_predictions(pred, args.show_dir, args.show_num)
        print(f'{len(written)} retrieval grids written to {args.show_dir}',
              flush=True)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    default_work_dir(cfg, args.config, args.work_dir)
    if args.checkpoint is not None:
        if not osp.isfile(args.checkpoint):
            raise FileNotFoundError(
                f'checkpoint not found: {args.checkpoint}')
        cfg.load_from = args.checkpoint
    if args.amp:
        cfg.test_cfg = dict(cfg.get('test_cfg') or {}, fp16=True)
    # testing needs no training or validation parts (a zero-shot config
    # may define a train dataloader without an optimizer)
    for key in ('train_dataloader', 'train_cfg', 'optim_wrapper',
                'param_scheduler', 'val_dataloader', 'val_cfg',
                'val_evaluator'):
        cfg[key] = None
    merge_cfg_options(cfg, args.cfg_options)  # data_root=DIR moves a dataset
    # one checklist, exit 2
    run_preflight(cfg, ('test', ), args.config, args.cfg_options)
    set_dataloader_defaults(cfg)
    setup_threads(args.threads, loader_workers(cfg))
    setup_launcher(cfg, args.launcher)
    trust = trust_checkpoints() if args.trust_checkpoint \
        else contextlib.nullcontext()
    with trust:
        runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg \
            else RUNNERS.build(cfg)
        if args.checkpoint is not None and not args.non_strict:
            check_checkpoint(runner, args.checkpoint)
        collector = None
        if args.out_item == 'pred' or args.show_dir:
            collector = SimilarityCollector()
            runner.test_evaluator.metrics.append(collector)
        metrics = runner.test()
    if is_main_process():
        print(format_retrieval_table(metrics), flush=True)
        write_outputs(args, metrics, runner, collector)
    finish_cpu_distributed()


if __name__ == '__main__':
    main()
