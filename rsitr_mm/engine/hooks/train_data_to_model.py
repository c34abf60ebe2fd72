# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Hand the training dataset's annotations to the modules built from them.

The BiGRU vocabulary and the OSFCM object priors are model state derived
from the training captions. Instead of naming the caption files a second
time in the model config, the shipped configs name them once, in the
dataset config; :class:`TrainDataToModelHook` takes the annotation files of
the training dataset the runner built and calls ``setup_from_train_data``
on every module of the model that has it
(:meth:`~rsitr_mm.models.backbones.BiGRUTextEncoder.setup_from_train_data`,
:meth:`~rsitr_mm.models.heads.ObjectSemanticClusterHead.setup_from_train_data`).
A module whose config names its own files keeps them (an override).

When: ``before_run`` of a training run, at the highest priority. mmengine
builds the train dataloader and the optimizer before ``before_run`` and
initialises the weights and loads/resumes a checkpoint after it, so

* the modules resize their tables in place (the ``Parameter`` objects the
  optimizer holds stay the same);
* a resumed or ``load_from`` checkpoint then restores its own vocabulary
  and prototypes (saved in the state dict);
* test-only and validation-only runs (no train loop) are left alone: their
  modules get vocabulary and sizes from the checkpoint.

Under DDP the model was wrapped before any hook runs, with the placeholder
shapes; when a parameter changed shape the hook wraps the model again
(``runner.wrap_model``), which also broadcasts rank 0's weights. It checks
once more in ``before_train`` (after a checkpoint was loaded, which may
bring a vocabulary of another size) and wraps again if a shape changed.

Text work in the data pipeline: also in ``before_train`` (the vocabulary,
priors and any checkpoint are final, the loader workers not started), the
hook asks the model for its per-sample preparers
(``caption_data_preparers``: caption tokenizer, OSFCM targets, ids) and
hands them to a :class:`~rsitr_mm.datasets.transforms.PrepareCaptionData`
at the end of every pipeline of the training dataset (the one a config
placed there itself is filled instead), and wraps the loader's collate
function in :class:`~rsitr_mm.datasets.transforms.CaptionDataCollate`, so
the training forward receives tensors (``text_data``). Chosen over a
transform in the dataset configs because the vocabulary and the priors
exist only once the run started (and a resumed checkpoint may replace
the vocabulary); ``prepare_text_in_pipeline=False`` turns it off (the
model then tokenises the captions itself, with the same function).
"""
import gc
import os.path as osp
import time
from typing import Any, List

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmpretrain.registry import HOOKS
from mmengine.runner import BaseLoop
from torch.nn.parallel import DistributedDataParallel


def _join(root: Any, path: str) -> str:
    if isinstance(root, str) and root and not osp.isabs(path):
        return osp.join(root, path)
    return path


def train_annotation_files(dataset: Any) -> List[str]:
    """Annotation files of a (possibly wrapped or concatenated) dataset.

    Descends into ``datasets`` (``ConcatDataset``), ``dataset``
    (``RepeatDataset``, ``ClassBalancedDataset``) and ``dataset_cfgs``
    (:class:`~rsitr_mm.datasets.LeakageSafeConcatDataset`, whose sources
    are configs); a dataset contributes its ``ann_file`` (mmengine's
    ``BaseDataset`` holds it joined with ``data_root``).

    Args:
        dataset: The built training dataset.

    Returns:
        list[str]: The files, in order, without repeats.

    Raises:
        ValueError: When no annotation file is found.
    """
    found: List[str] = []

    def walk(ds: Any) -> None:
        if isinstance(ds, dict):  # a source config
            ann = ds.get('ann_file')
            if isinstance(ann, str) and ann:
                found.append(_join(ds.get('data_root'), ann))
            return
        inner = getattr(ds, 'datasets', None)
        if isinstance(inner, (list, tuple)):
            for d in inner:
                walk(d)
            return
        cfgs = getattr(ds, 'dataset_cfgs', None)
        if isinstance(cfgs, (list, tuple)):
            for d in cfgs:
                walk(dict(d))
            return
        if getattr(ds, 'dataset', None) is not None:
            walk(ds.dataset)
            return
        ann = getattr(ds, 'ann_file', None)
        if isinstance(ann, str) and ann:
            found.append(ann)

    walk(dataset)
    files = list(dict.fromkeys(found))
    if not files:
        raise ValueError(
            f'TrainDataToModelHook: the training dataset '
            f'({type(dataset).__name__}) has no ann_file to build the '
            'vocabulary / object priors from; name the files in the model '
            'config instead (model.text_encoder.ann_files, the OSFCM '
            "head's ann_file).")
    return files


def _packs(transform: Any) -> bool:
    """Whether ``transform`` is (or has fused in) a ``PackInputs``."""
    from mmpretrain.datasets.transforms import PackInputs
    return isinstance(transform, PackInputs) or any(
        isinstance(t, PackInputs)
        for t in getattr(transform, 'fused', None) or ())


def _pipelines(dataset: Any) -> List[Any]:
    """The ``Compose`` pipelines of a (wrapped, concatenated) dataset that
    pack samples (``PackInputs``)."""
    found: List[Any] = []

    def walk(ds: Any) -> None:
        pipeline = getattr(ds, 'pipeline', None)
        transforms = getattr(pipeline, 'transforms', None)
        if isinstance(transforms, list) and any(map(_packs, transforms)):
            found.append(pipeline)
        inner = getattr(ds, 'datasets', None)
        for d in inner if isinstance(inner, (list, tuple)) else ():
            walk(d)
        if getattr(ds, 'dataset', None) is not None:
            walk(ds.dataset)

    walk(dataset)
    return found


def attach_caption_data(dataloader: Any, model: Any) -> bool:
    """Fill (or append) :class:`PrepareCaptionData` in the pipelines of the
    loader's dataset with the model's preparers and wrap its collate
    function; see the module docstring.

    Returns:
        bool: Whether the loader now prepares the text data.
    """
    from rsitr_mm.datasets.transforms import (CaptionDataCollate,
                                              PrepareCaptionData)
    make = getattr(model, 'caption_data_preparers', None)
    preparers = make() if callable(make) else []
    pipelines = _pipelines(dataloader.dataset)
    if not preparers or not pipelines:
        return False
    collate = dataloader.collate_fn
    if isinstance(collate, CaptionDataCollate):
        collate = collate.collate_fn
    prepare = None
    for pipeline in pipelines:
        placed = [t for t in pipeline.transforms
                  if isinstance(t, PrepareCaptionData)]
        if not placed:
            placed = [PrepareCaptionData()]
            pipeline.transforms.append(placed[0])
        for t in placed:
            t.preparers = list(preparers)
        prepare = placed[0]
    dataloader.collate_fn = CaptionDataCollate(collate, prepare)
    return True


def describe_train_state(module: Any) -> str:
    """What a module built from the training data, with its counts (a
    vocabulary's words, object priors' images and nouns)."""
    priors = getattr(module, 'priors', None)  # OSFCM (its noun list is
    if priors is not None and hasattr(priors, 'num_nouns'):  # a vocab too)
        return (f'object priors of {priors.num_images} images x '
                f'{priors.num_nouns} nouns')
    vocab = getattr(module, 'vocab', None)
    if vocab is not None and hasattr(vocab, '__len__'):
        return f'vocabulary of {len(vocab)} words'
    return type(module).__name__


@HOOKS.register_module()
class TrainDataToModelHook(Hook):
    """Build data-derived model state from the training dataset.

    See the module docstring. Registered in
    ``configs/_base_/default_runtime.py``; a model without such modules is
    left untouched.
    """

    priority = 'VERY_HIGH'

    def __init__(self, prepare_text_in_pipeline: bool = True) -> None:
        self.prepare_text_in_pipeline = prepare_text_in_pipeline

    def before_run(self, runner) -> None:
        """Hand the training annotation files to the modules that take
        them (training runs only)."""
        loop = getattr(runner, '_train_loop', None)
        if not isinstance(loop, BaseLoop):
            return  # test / val only: the checkpoint brings the state
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        # a module whose config named its own data (``data_from_config``:
        # vocabulary source, priors file) needs no training files
        takers = [(name, m) for name, m in model.named_modules()
                  if callable(getattr(m, 'setup_from_train_data', None))
                  and not getattr(m, 'data_from_config', False)]
        if not takers:
            return
        files = train_annotation_files(loop.dataloader.dataset)
        resized, built = [], []
        start = time.perf_counter()
        for name, module in takers:
            if module.setup_from_train_data(files):
                resized.append(name)
            built.append(f'{name or "model"}: {describe_train_state(module)}')
        runner.logger.info(
            f'TrainDataToModelHook: built {"; ".join(built)} from '
            f'{len(files)} annotation file(s) {files} in '
            f'{time.perf_counter() - start:.1f} s')
        if resized:
            self._rewrap(runner, model)
        self._shapes = self._param_shapes(model)

    def before_train(self, runner) -> None:
        """Wrap again if loading a checkpoint changed a parameter's shape
        (a vocabulary of another size)."""
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        if self.prepare_text_in_pipeline:
            attach_caption_data(runner.train_loop.dataloader, model)
        shapes = getattr(self, '_shapes', None)
        if shapes is None:
            return
        now = self._param_shapes(model)
        if now != shapes:
            self._rewrap(runner, model)
            self._shapes = now

    @staticmethod
    def _param_shapes(model) -> dict:
        return {n: tuple(p.shape) for n, p in model.named_parameters()}

    @staticmethod
    def _rewrap(runner, model) -> None:
        """DDP's reducer was set up for the old shapes: wrap again."""
        if not isinstance(runner.model, DistributedDataParallel):
            return
        old = runner.model
        runner.model = None
        del old
        gc.collect()
        runner.model = runner.wrap_model(
            runner.cfg.get('model_wrapper_cfg'), model)
