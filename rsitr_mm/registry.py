# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Registries of the ``rsitr_mm`` scope.

rsitr_mm registers its modules in mmpretrain's registries (scope
``mmpretrain``, the ``default_scope`` of every shipped config). These
child registries exist for configs that inherit ours from the installed
package (``_base_ = 'rsitr_mm::_base_/...'``): mmengine marks every dict
with a ``type`` from such a base with ``_scope_='rsitr_mm'`` and builds it
in the registry of that scope, which imports this module. Each registry
here is empty and looks names up in its mmpretrain parent, so the
``rsitr_mm`` scope builds exactly what the ``mmpretrain`` scope builds; each
imports its parent's locations too (mmengine looks names up in a parent
without importing them: ``UniversalVisualizer`` lives in
``mmpretrain.visualization``). ``FUNCTIONS`` (parent: mmengine's) holds
``rsitr_mm.default_collate``, the collate function of the shipped
dataloaders (:mod:`rsitr_mm.datasets.collate`).
"""
from mmengine.registry import FUNCTIONS as _MMENGINE_FUNCTIONS
from mmengine.registry import Registry
from mmpretrain import registry as _mmpretrain

_NAMES = ('RUNNERS', 'RUNNER_CONSTRUCTORS', 'LOOPS', 'HOOKS',
          'LOG_PROCESSORS', 'OPTIMIZERS', 'OPTIM_WRAPPERS',
          'OPTIM_WRAPPER_CONSTRUCTORS', 'PARAM_SCHEDULERS', 'DATASETS',
          'DATA_SAMPLERS', 'TRANSFORMS', 'MODELS', 'MODEL_WRAPPERS',
          'WEIGHT_INITIALIZERS', 'BATCH_AUGMENTS', 'TASK_UTILS', 'TOKENIZER',
          'METRICS', 'EVALUATORS', 'VISUALIZERS', 'VISBACKENDS')


def _child(name: str) -> Registry:
    parent = getattr(_mmpretrain, name)
    # importing rsitr_mm registers its modules (in the parent)
    return Registry(
        parent.name, parent=parent, scope='rsitr_mm',
        locations=['rsitr_mm'] + list(getattr(parent, '_locations', [])))


RUNNERS = _child('RUNNERS')
RUNNER_CONSTRUCTORS = _child('RUNNER_CONSTRUCTORS')
LOOPS = _child('LOOPS')
HOOKS = _child('HOOKS')
LOG_PROCESSORS = _child('LOG_PROCESSORS')
OPTIMIZERS = _child('OPTIMIZERS')
OPTIM_WRAPPERS = _child('OPTIM_WRAPPERS')
OPTIM_WRAPPER_CONSTRUCTORS = _child('OPTIM_WRAPPER_CONSTRUCTORS')
PARAM_SCHEDULERS = _child('PARAM_SCHEDULERS')
DATASETS = _child('DATASETS')
DATA_SAMPLERS = _child('DATA_SAMPLERS')
TRANSFORMS = _child('TRANSFORMS')
MODELS = _child('MODELS')
MODEL_WRAPPERS = _child('MODEL_WRAPPERS')
WEIGHT_INITIALIZERS = _child('WEIGHT_INITIALIZERS')
BATCH_AUGMENTS = _child('BATCH_AUGMENTS')
TASK_UTILS = _child('TASK_UTILS')
TOKENIZER = _child('TOKENIZER')
METRICS = _child('METRICS')
EVALUATORS = _child('EVALUATORS')
VISUALIZERS = _child('VISUALIZERS')
VISBACKENDS = _child('VISBACKENDS')
FUNCTIONS = Registry(
    'function', parent=_MMENGINE_FUNCTIONS, scope='rsitr_mm',
    locations=['rsitr_mm.datasets.collate'])

__all__ = list(_NAMES) + ['FUNCTIONS']
