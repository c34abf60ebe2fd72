# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Catch config mistakes before anything is built or trained.

mmengine accepts any top-level key and any ``--cfg-options`` key: a typo
(``trian_cfg.max_epochs=1``) adds a key nobody reads and the run trains the
full schedule. The checks here turn such mistakes into one error naming
the key, what was expected and, where a known key is close, a
"did you mean" suggestion:

* :func:`check_cfg_options` (called by
  :func:`~rsitr_mm.engine.data_root.merge_cfg_options` and
  :func:`~rsitr_mm.apis.init_retriever` before the merge): every
  ``--cfg-options`` key must name an existing key, a top-level key of the
  allow-list, or a constructor argument of the ``type`` it is set under;
* :func:`check_config` (called by
  :func:`~rsitr_mm.engine.preflight.run_preflight`): the top-level keys
  are in the allow-list; ``train_cfg.max_epochs`` / ``max_iters`` and
  ``val_interval`` are integers >= 1; every data preprocessor's ``mean`` /
  ``std`` has 1 or 3 finite values, ``std`` non-zero; every hook of
  ``default_hooks`` / ``custom_hooks`` is built once, so that a bad hook
  argument fails at start-up instead of at the first checkpoint.

The allow-list is mmengine's Runner keys (:data:`MMENGINE_KEYS`) and the
variables our configs use (:data:`RSITR_KEYS`). A config's own helper
variables are marked by a leading underscore (``_my_size = 384``): such
top-level names are never checked.
"""
import copy
import difflib
import inspect
import numbers
from typing import Any, Iterable, List, Optional, Sequence

from mmengine.config import DictAction

#: Top-level keys mmengine's Runner (and ``Config``/``tools``) read.
MMENGINE_KEYS = frozenset({
    'model', 'work_dir', 'train_dataloader', 'val_dataloader',
    'test_dataloader', 'train_cfg', 'val_cfg', 'test_cfg', 'auto_scale_lr',
    'optim_wrapper', 'param_scheduler', 'val_evaluator', 'test_evaluator',
    'default_hooks', 'custom_hooks', 'data_preprocessor', 'load_from',
    'resume', 'launcher', 'env_cfg', 'log_processor', 'log_level',
    'visualizer', 'default_scope', 'randomness', 'experiment_name',
    'runner_type', 'custom_imports', 'model_wrapper_cfg', 'compile',
    'find_unused_parameters', 'cfg', 'strategy', 'dist_cfg',
    'activation_checkpointing', 'efficient_conv_bn_eval', 'vis_backends',
    'train_pipeline', 'val_pipeline', 'test_pipeline', 'dataset_type',
    'data_root', 'backend_args'
})

#: Top-level variables of the shipped configs (read by their own files).
RSITR_KEYS = frozenset({
    'ann_file', 'clip_path', 'dataset_common', 'img_scale', 'lora',
    'num_classes',
    'resnet50_checkpoint', 'rsicd_train', 'rsicd_test_split',
    'rsitmd_train', 'rsitmd_test_split', 'ucm_train', 'ucm_test_split',
    # the controlled-testbed configs (configs/testbed/)
    'iters_per_epoch', 'max_epochs', 'width'
})

#: Keys read by someone other than the ``type`` they sit under (mmengine
#: pops them before building): ``{parent path: keys}``; ``*`` is any key.
READ_ELSEWHERE = {
    'optim_wrapper': ('constructor', 'paramwise_cfg'),
    'default_hooks.*': ('priority', ),
    'custom_hooks.*': ('priority', ),
}

KNOWN_TOP_LEVEL = MMENGINE_KEYS | RSITR_KEYS


class ConfigError(ValueError):
    """A config mistake found before the run starts."""


class CfgOptionsAction(DictAction):
    """mmengine's ``DictAction`` that refuses an item without ``=``.

    ``--cfg-options model.embed_dim`` otherwise fails inside argparse with
    "not enough values to unpack".
    """

    def __call__(self, parser, namespace, values, option_string=None):
        for item in values:
            if '=' not in item:
                parser.error(
                    f'{option_string} {item!r}: expected KEY=VALUE (e.g. '
                    f'{item}=...); the "=" and the value are missing')
        super().__call__(parser, namespace, values, option_string)


def _suggest(word: str, choices: Iterable[str],
             cutoff: float = 0.6) -> str:
    close = difflib.get_close_matches(word, sorted(set(choices)), n=1,
                                      cutoff=cutoff)
    return f' (did you mean {close[0]!r}?)' if close else ''


def _registries() -> list:
    from mmpretrain import registry as reg
    names = ('MODELS', 'HOOKS', 'DATASETS', 'TRANSFORMS', 'LOOPS',
             'OPTIM_WRAPPERS', 'OPTIMIZERS', 'PARAM_SCHEDULERS', 'METRICS',
             'EVALUATORS', 'VISUALIZERS', 'VISBACKENDS', 'DATA_SAMPLERS',
             'LOG_PROCESSORS', 'OPTIM_WRAPPER_CONSTRUCTORS', 'FUNCTIONS')
    return [getattr(reg, n) for n in names if hasattr(reg, n)]


def _resolve(type_name: Any) -> Optional[Any]:
    """The class/function a ``type`` names in our registries, if any."""
    if not isinstance(type_name, str):
        return type_name if callable(type_name) else None
    for registry in _registries():
        try:
            obj = registry.get(type_name)
        except Exception:  # noqa: BLE001  unknown scope etc.
            obj = None
        if obj is not None:
            return obj
    return None


def accepted_arguments(obj: Any) -> Optional[List[str]]:
    """Keyword arguments a class or function accepts (``None``: any).

    An ``__init__(self, *args, x=..., **kwargs)`` is taken to forward the
    rest to its base class, whose arguments are added; an ``__init__``
    with ``**kwargs`` only accepts anything as far as this check can tell.
    """
    if inspect.isclass(obj):
        inits = [k.__init__ for k in obj.__mro__ if '__init__' in vars(k)]
    else:
        inits = [obj]
    names: List[str] = []
    for fn in inits:
        try:
            params = list(inspect.signature(fn).parameters.values())
        except (TypeError, ValueError):
            return None
        kinds = {p.kind for p in params}
        names += [p.name for p in params
                  if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
                  and p.name != 'self']
        if inspect.Parameter.VAR_KEYWORD not in kinds:
            return names
        if inspect.Parameter.VAR_POSITIONAL not in kinds:
            return None
    return None


def _child(node: Any, part: str) -> Any:
    if isinstance(node, (list, tuple)):
        try:
            return node[int(part)]
        except (ValueError, IndexError):
            return _MISSING
    if hasattr(node, 'keys'):
        return node[part] if part in node else _MISSING
    return _MISSING


_MISSING = object()


def check_cfg_options(cfg: Any, options: Optional[dict]) -> None:
    """Refuse ``--cfg-options`` keys that nothing would read.

    Args:
        cfg (Config | dict): the config BEFORE the options are merged.
        options (dict, optional): the parsed ``--cfg-options``.

    Raises:
        ConfigError: a key is unknown (the key, where it stops matching
            and the closest known key are named).
    """
    for key in options or {}:
        parts = str(key).split('.')
        node = cfg
        for depth, part in enumerate(parts):
            if part == '_delete_':
                break
            nxt = _child(node, part)
            if nxt is not _MISSING:
                node = nxt
                continue
            _unknown_option(key, parts, depth, node)
            break


def _unknown_option(key: str, parts: Sequence[str], depth: int,
                    node: Any) -> None:
    part = parts[depth]
    where = '.'.join(parts[:depth]) or 'the top level'
    if depth == 0:
        if part.startswith('_') or part in KNOWN_TOP_LEVEL:
            return
        raise ConfigError(
            f'--cfg-options {key}: unknown top-level key {part!r}'
            f'{_suggest(part, list(node.keys()) + list(KNOWN_TOP_LEVEL))}; '
            'nothing reads it. Config variables of your own start with "_"')
    if not hasattr(node, 'keys') or part.startswith('_'):
        return  # a list index out of range, a scalar replaced, _scope_...
    for parent, keys in READ_ELSEWHERE.items():
        pattern = parent.split('.')
        if len(pattern) == depth and part in keys and all(
                p in ('*', q) for p, q in zip(pattern, parts)):
            return
    existing = list(node.keys())
    target = _resolve(node.get('type')) if 'type' in node else None
    if target is not None:
        accepted = accepted_arguments(target)
        if accepted is None or part in accepted:
            return
        name = getattr(target, '__name__', str(node.get('type')))
        raise ConfigError(
            f'--cfg-options {key}: {name} (at {where}) takes no argument '
            f'{part!r}{_suggest(part, existing + accepted)}; it accepts '
            f'{sorted(set(accepted))}')
    # a plain dict (no type): a new key is fine unless it is a near miss
    close = difflib.get_close_matches(part, existing, n=1, cutoff=0.8)
    if close:
        raise ConfigError(
            f'--cfg-options {key}: {where} has no key {part!r} (did you '
            f'mean {close[0]!r}?); nothing reads it')


def _is_int_at_least_1(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and \
        not isinstance(value, bool) and value >= 1


def _check_schedule(cfg: Any, config: str) -> None:
    train_cfg = cfg.get('train_cfg')
    if not hasattr(train_cfg, 'get'):
        return
    for key in ('max_epochs', 'max_iters', 'val_interval'):
        value = train_cfg.get(key)
        if value is not None and not _is_int_at_least_1(value):
            what = ('validation would never run (or divide by zero)'
                    if key == 'val_interval' else
                    'the run would train nothing and exit 0')
            raise ConfigError(
                f'{config}: train_cfg.{key} must be an integer >= 1, got '
                f'{value!r}; {what}')


def _check_preprocessors(cfg: Any, config: str) -> None:
    from ..models.data_preprocessors.retrieval_data_preprocessor import \
        check_mean_std
    places = [('data_preprocessor', cfg.get('data_preprocessor'))]
    model = cfg.get('model')
    if hasattr(model, 'get'):
        places.append(('model.data_preprocessor',
                       model.get('data_preprocessor')))
    for key, pre in places:
        if hasattr(pre, 'get'):
            try:
                check_mean_std(pre.get('mean'), pre.get('std'),
                               f'{config}: {key}')
            except ValueError as e:
                raise ConfigError(str(e)) from None


def _check_hooks(cfg: Any, config: str) -> None:
    """Build every hook once; an argument error names the hook's key."""
    from mmpretrain.registry import HOOKS
    hooks = []
    default = cfg.get('default_hooks')
    if hasattr(default, 'items'):
        hooks += [(f'default_hooks.{k}', v) for k, v in default.items()]
    for i, hook in enumerate(cfg.get('custom_hooks') or []):
        hooks.append((f'custom_hooks.{i}', hook))
    for key, hook in hooks:
        if not hasattr(hook, 'items') or 'type' not in hook:
            continue
        try:
            HOOKS.build(copy.deepcopy(dict(hook)))
        except (TypeError, ValueError, KeyError) as e:
            raise ConfigError(f'{config}: {key} ({hook.get("type")}) cannot '
                              f'be built: {e}') from None
        except Exception:  # noqa: BLE001  needs the runner (visualizer...)
            continue


def check_config(cfg: Any, phases: Sequence[str] = ('train', ),
                 config: str = '') -> None:
    """Every check of the module doc on a merged config.

    Args:
        cfg (Config | dict): the merged config.
        phases (Sequence[str]): ``'train'`` adds the schedule checks.
        config (str): the config file, for the messages.

    Raises:
        ConfigError: the first mistake found.
    """
    config = config or 'the config'
    unknown = [
        k for k in cfg.keys()
        if not str(k).startswith('_') and k not in KNOWN_TOP_LEVEL
    ]
    if unknown:
        detail = '; '.join(
            f'{k!r}{_suggest(k, KNOWN_TOP_LEVEL)}' for k in unknown)
        raise ConfigError(
            f'{config}: unknown top-level key(s): {detail}. Nothing reads '
            'them; name your own config variables with a leading "_" '
            '(e.g. _img_size = 384)')
    if 'train' in phases:
        _check_schedule(cfg, config)
    _check_preprocessors(cfg, config)
    _check_hooks(cfg, config)

