# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Val/test loops that evaluate the exact N x 5N similarity matrix once."""
from typing import Callable, Dict, List, Optional, Tuple

import torch
from mmengine.dist import is_main_process
from mmengine.runner import TestLoop, ValLoop, autocast
from mmpretrain.registry import LOOPS

from ...evaluation.functional.rerank import build_reranker, evaluate_reranked
from ...utils.dist import gather_indexed_rows
from .eval_progress import EvalProgress

#: seconds between the progress lines of a val/test pass
PROGRESS_INTERVAL_S = 30.0


def _as_list(value) -> List[int]:
    if isinstance(value, torch.Tensor):
        return [int(v) for v in value.flatten().tolist()]
    if isinstance(value, (list, tuple)):
        return [int(v) for v in value]
    return [int(value)]


def _sample_field(sample, key: str):
    """Read ``key`` from a DataSample's data fields or metainfo."""
    value = getattr(sample, key, None)
    if value is None:
        raise KeyError(
            f'Test sample has no "{key}": the test pipeline must end with '
            "PackInputs(algorithm_keys=['text', 'gt_text_id', "
            "'gt_image_id', 'image_id'], ...) so the loop can place every "
            'feature exactly.')
    return value


def encode_loader(module,
                  dataloader,
                  fp16: bool = False,
                  call_hook: Optional[Callable] = None,
                  progress: Optional[EvalProgress] = None
                  ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Encode a test-mode loader into exact, globally ordered features.

    Every rank encodes its share of the images and captions. Rows are
    gathered from all ranks and placed by their global index
    (``image_id`` for images, ``gt_text_id`` for captions), so duplicated
    padding from the sampler is harmless and nothing is dropped.

    Args:
        module (nn.Module): the (unwrapped) retriever.
        dataloader (DataLoader): loader over a test-mode dataset with
            ``img_size`` and ``text_size``.
        fp16 (bool): encode under autocast.
        call_hook (Callable, optional): ``call_hook(stage, **kwargs)`` with
            stage ``'before_iter'``/``'after_iter'``, for runner hooks.
        progress (EvalProgress, optional): counts the images encoded and
            logs progress lines.

    Returns:
        tuple[torch.Tensor, torch.Tensor]: ``(image_feat (N, D),
        text_feat (T, D))`` in dataset order, on every rank.
    """
    dataset = dataloader.dataset
    num_images, num_texts = dataset.img_size, dataset.text_size
    img_feats, img_index, txt_feats, txt_index = [], [], [], []
    for idx, data_batch in enumerate(dataloader):
        if call_hook is not None:
            call_hook('before_iter', batch_idx=idx, data_batch=data_batch)
        with torch.no_grad(), autocast(enabled=fp16):
            data = module.data_preprocessor(data_batch, False)
            feats = module._run_forward(data, mode='tensor')
        samples = data['data_samples']
        img_feats.append(feats['image_feat'].float())
        img_index.extend(
            _as_list(_sample_field(s, 'image_id'))[0] for s in samples)
        txt_feats.append(feats['text_feat'].float())
        for s in samples:
            txt_index.extend(_as_list(_sample_field(s, 'gt_text_id')))
        if call_hook is not None:
            call_hook('after_iter', batch_idx=idx, data_batch=data_batch)
        if progress is not None:
            progress.update(len(samples))
    if progress is not None:
        progress.finish()
    if not img_feats:
        raise RuntimeError('the evaluation loader yielded no batch')
    device = img_feats[0].device
    image_feat = gather_indexed_rows(
        torch.cat(img_feats), torch.tensor(img_index, device=device),
        num_images, 'image features')
    text_feat = gather_indexed_rows(
        torch.cat(txt_feats), torch.tensor(txt_index, device=device),
        num_texts, 'caption features')
    return image_feat, text_feat


def run_exact_retrieval(loop) -> Dict[str, float]:
    """Encode the whole loader exactly (:func:`encode_loader`), score once.

    The main process builds the full similarity matrix through the model's
    ``compute_similarity`` and feeds it to the evaluator once.

    Args:
        loop (ValLoop | TestLoop): the loop (gives runner, dataloader,
            evaluator and fp16).

    Returns:
        dict[str, float]: the metrics, identical on every rank.
    """
    runner = loop.runner
    model = runner.model
    module = model.module if hasattr(model, 'module') else model
    stage = loop._hook_prefix  # 'val' or 'test'

    def call_hook(when, **kwargs):
        name = when.replace('_iter', f'_{stage}_iter')
        if when == 'after_iter':
            kwargs['outputs'] = None
        runner.call_hook(name, **kwargs)

    sampler = getattr(loop.dataloader, 'sampler', None)
    total = len(sampler) if sampler is not None and hasattr(
        sampler, '__len__') else len(loop.dataloader.dataset)
    progress = EvalProgress(stage, total, PROGRESS_INTERVAL_S) \
        if is_main_process() else None
    image_feat, text_feat = encode_loader(module, loop.dataloader, loop.fp16,
                                          call_hook, progress)
    sim = None
    if is_main_process():
        with torch.no_grad():
            sim = module.compute_similarity(image_feat, text_feat)
        sim = sim.float()  # scored on its device
        loop.evaluator.process(
            data_samples=[dict(similarity=sim)], data_batch=None)
    metrics = loop.evaluator.evaluate(1)
    reranker = getattr(loop, 'reranker', None)
    if reranker is not None:  # raw AND re-ranked numbers ('rerank/...')
        metrics.update(evaluate_reranked(loop.evaluator, sim, reranker))
    return metrics


@LOOPS.register_module()
class RSRetrievalValLoop(ValLoop):
    """Validation loop computing the exact retrieval metrics.

    Unlike mmpretrain's ``RetrievalValLoop`` it is exact when the number of
    test images is not divisible by the number of processes (see
    :func:`run_exact_retrieval`). The model must return ``image_feat`` and
    ``text_feat`` in ``mode='tensor'`` and implement
    ``compute_similarity``.

    Args:
        runner (Runner): the runner.
        dataloader (DataLoader | dict): the val dataloader (test mode
            dataset, one item per image with its captions).
        evaluator (Evaluator | dict | list): usually
            ``dict(type='RSRetrievalMetric')``.
        fp16 (bool): encode under autocast. Defaults to False.
    """
    _hook_prefix = 'val'

    def run(self) -> dict:
        """Launch validation."""
        self.runner.call_hook('before_val')
        self.runner.call_hook('before_val_epoch')
        self.runner.model.eval()
        metrics = run_exact_retrieval(self)
        self.runner.call_hook('after_val_epoch', metrics=metrics)
        self.runner.call_hook('after_val')
        return metrics


@LOOPS.register_module()
class RSRetrievalTestLoop(TestLoop):
    """Test loop computing the exact retrieval metrics.

    Args:
        runner (Runner): the runner.
        dataloader (DataLoader | dict): the test dataloader.
        evaluator (Evaluator | dict | list): usually
            ``dict(type='RSRetrievalMetric')``.
        fp16 (bool): encode under autocast. Defaults to False.
        rerank (dict, optional): test-time re-ranking, e.g.
            ``dict(type='dual_softmax', temperature=0.05)`` (see
            :mod:`rsitr_mm.evaluation.functional.rerank`): the metrics of
            the re-ranked matrices are reported too, under ``rerank/``.
            It uses the other test queries (transductive). Defaults to None.
    """
    _hook_prefix = 'test'

    def __init__(self, runner, dataloader, evaluator, fp16: bool = False,
                 rerank: Optional[dict] = None) -> None:
        super().__init__(runner, dataloader, evaluator, fp16)
        self.reranker = build_reranker(rerank)

    def run(self) -> dict:
        """Launch test."""
        self.runner.call_hook('before_test')
        self.runner.call_hook('before_test_epoch')
        self.runner.model.eval()
        metrics = run_exact_retrieval(self)
        self.runner.call_hook('after_test_epoch', metrics=metrics)
        self.runner.call_hook('after_test')
        return metrics
