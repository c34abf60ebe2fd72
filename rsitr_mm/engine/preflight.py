# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Check every local path a config needs before anything is built.

``tools/train.py`` and ``tools/test.py`` call :func:`preflight` right after
the config is merged: instead of failing on the first missing file deep in a
vocabulary builder or a dataset, the user gets ONE checklist of everything
missing, with the config key that names each path and where to get it.

What is checked (only what the run will read):

* datasets of the dataloaders the run builds (train + val for training,
  test for testing): ``ann_file``, the image folder
  (``data_prefix.img_path``) and ``class_map``, each resolved against
  ``data_root`` as the dataset resolves it;
* model inputs anywhere in ``model``: ``pretrained`` / ``tokenizer``
  (a local folder, or a hub id that transformers downloads: ids are not
  checked here), ``init_cfg.checkpoint`` (a local file or a URL),
  ``ann_file`` / ``ann_files`` (overrides in a user's model config; the
  shipped configs take the BiGRU vocabulary and OSFCM priors from the
  training dataset, whose ``ann_file`` is checked above);
* ``load_from`` (a local file or a URL);
* hub ids and ``http(s)://`` URLs (``pretrained``, ``tokenizer``,
  ``init_cfg.checkpoint``, ``load_from``) when they can be neither read from
  the local caches nor downloaded now (offline): see
  :mod:`rsitr_mm.engine.remote_inputs`.

Files the run writes itself (vocabulary and prior caches) are not inputs and
are not checked.
"""
import os.path as osp
from dataclasses import dataclass
from typing import Any, Iterator, List, Optional, Sequence, Tuple

from ..models.utils.hf_utils import how_to_provide, is_hub_id

#: Where each dataset comes from (docs/datasets.md has the details).
DATASET_SOURCES = {
    'RSICD': 'RSICD (Lu et al., TGRS 2017)',
    'RSITMD': 'RSITMD (Yuan et al., TGRS 2021)',
    'UCMCaptions': 'UCM-Captions (Qu et al., 2016)',
    'SydneyCaptions': 'Sydney-Captions (Qu et al., 2016)',
}
_URL_PREFIXES = ('http://', 'https://', 's3://', 'open-mmlab://',
                 'torchvision://', 'mmcls://', 'mmpretrain://')


@dataclass
class PathCheck:
    """One local path a config needs.

    Attributes:
        key (str): The config key that names it
            (``train_dataloader.dataset.ann_file``).
        path (str): The path as the run resolves it.
        kind (str): ``'file'``, ``'dir'``, ``'hub'`` (a hub id) or ``'url'``.
        hint (str): Where to get it.
    """
    key: str
    path: str
    kind: str
    hint: str

    @property
    def exists(self) -> bool:
        """Whether the path exists with the expected kind (a hub id or URL:
        cached or downloadable now)."""
        if self.kind in ('hub', 'url'):
            from .remote_inputs import hub_available, url_available
            return (hub_available(self.path) if self.kind == 'hub' else
                    url_available(self.path))
        return osp.isfile(self.path) if self.kind == 'file' else osp.isdir(
            self.path)


def _get(cfg: Any, key: str, default: Any = None) -> Any:
    try:
        return cfg.get(key, default)
    except AttributeError:
        return default


def _join(root: Optional[str], path: str) -> str:
    if root and not osp.isabs(path):
        return osp.join(root, path)
    return path


def _dataset_hint(dataset: Any) -> str:
    dtype = str(_get(dataset, 'type', ''))
    if dtype in DATASET_SOURCES:
        return (f'the {DATASET_SOURCES[dtype]} files: see docs/datasets.md '
                '("Sources and citations", "Folder layout")')
    if 'Synthetic' in dtype:
        return ('generated scenes: run '
                'python tools/dataset_converters/generate_synthetic.py '
                '(or make demo)')
    return 'see docs/datasets.md'


def _iter_datasets(dataset: Any, key: str) -> Iterator[Tuple[str, Any]]:
    """Yield (key, dataset cfg), descending into dataset wrappers."""
    if dataset is None:
        return
    inner = _get(dataset, 'datasets')
    if isinstance(inner, (list, tuple)):
        for i, d in enumerate(inner):
            yield from _iter_datasets(d, f'{key}.datasets.{i}')
        return
    if _get(dataset, 'dataset') is not None:
        yield from _iter_datasets(_get(dataset, 'dataset'), f'{key}.dataset')
        return
    yield key, dataset


def _dataset_checks(dataset: Any, key: str) -> List[PathCheck]:
    checks = []
    root = _get(dataset, 'data_root') or ''
    hint = _dataset_hint(dataset)
    ann = _get(dataset, 'ann_file')
    if isinstance(ann, str) and ann:
        checks.append(PathCheck(f'{key}.ann_file', _join(root, ann), 'file',
                                hint))
    prefix = _get(dataset, 'data_prefix')
    img = _get(prefix, 'img_path') if prefix is not None else None
    if isinstance(img, str):
        checks.append(PathCheck(f'{key}.data_prefix.img_path',
                                _join(root, img), 'dir', hint))
    cmap = _get(dataset, 'class_map')
    if isinstance(cmap, str) and cmap:
        joined = _join(root, cmap)
        path = joined if osp.exists(joined) or not osp.exists(cmap) else cmap
        kind = 'file' if path.endswith(('.csv', '.json', '.txt')) else 'dir'
        checks.append(PathCheck(f'{key}.class_map', path, kind, hint))
    return checks


def _is_url(path: str) -> bool:
    return path.startswith(_URL_PREFIXES)


def _model_checks(node: Any, key: str) -> List[PathCheck]:
    """Walk a model config and collect its local inputs."""
    checks: List[PathCheck] = []
    if isinstance(node, (list, tuple)):
        for i, item in enumerate(node):
            checks += _model_checks(item, f'{key}.{i}')
        return checks
    if not hasattr(node, 'items'):
        return checks
    for name, value in node.items():
        sub = f'{key}.{name}'
        if name in ('pretrained', 'tokenizer') and isinstance(value, str):
            family = 'clip' if 'CLIP' in str(_get(node, 'type', '')) else \
                'bert'
            if not is_hub_id(value):
                checks.append(
                    PathCheck(sub, value, 'dir',
                              how_to_provide(value, sub, family)))
        elif name == 'init_cfg' and hasattr(value, 'items'):
            ckpt = _get(value, 'checkpoint')
            if isinstance(ckpt, str) and not _is_url(ckpt):
                checks.append(
                    PathCheck(
                        f'{sub}.checkpoint', ckpt, 'file',
                        'a checkpoint file (mmpretrain metafiles list the '
                        'URLs of its ImageNet checkpoints); or set '
                        f'{sub}=None to start from scratch'))
        elif name == 'ann_file' and isinstance(value, str):
            checks.append(
                PathCheck(sub, value, 'file',
                          'the training annotation json (docs/datasets.md)'))
        elif name == 'ann_files' and isinstance(value, (list, tuple)):
            for i, path in enumerate(value):
                if isinstance(path, str):
                    checks.append(
                        PathCheck(
                            f'{sub}.{i}', path, 'file',
                            'the training annotation json '
                            '(docs/datasets.md)'))
        elif isinstance(value, (list, tuple)) or hasattr(value, 'items'):
            checks += _model_checks(value, sub)
    return checks


def collect_path_checks(cfg: Any,
                        phases: Sequence[str] = ('train', )
                        ) -> List[PathCheck]:
    """All local paths the run needs, in config order.

    Args:
        cfg (Config | dict): The merged config.
        phases (Sequence[str]): ``'train'`` (train + val dataloaders) and/or
            ``'test'`` (test dataloader).

    Returns:
        list[PathCheck]: Every path with the key that names it.
    """
    loaders = []
    if 'train' in phases:
        loaders += ['train_dataloader', 'val_dataloader']
    if 'test' in phases:
        loaders += ['test_dataloader']
    checks: List[PathCheck] = []
    for loader in loaders:
        dl = _get(cfg, loader)
        if dl is None:
            continue
        for key, dataset in _iter_datasets(
                _get(dl, 'dataset'), f'{loader}.dataset'):
            checks += _dataset_checks(dataset, key)
    if _get(cfg, 'model') is not None:
        checks += _model_checks(cfg['model'], 'model')
    load_from = _get(cfg, 'load_from')
    if isinstance(load_from, str) and not _is_url(load_from):
        checks.append(
            PathCheck('load_from', load_from, 'file',
                      'a checkpoint written by tools/train.py'))
    from .remote_inputs import remote_checks
    checks += remote_checks(cfg)
    seen, unique = set(), []
    for check in checks:
        # a hub id or URL: one line per key that names it
        ident = (check.path, check.kind) if check.kind in ('file', 'dir') \
            else (check.key, )
        if ident not in seen:
            seen.add(ident)
            unique.append(check)
    return unique


def _closing_advice(missing: Sequence[PathCheck],
                    data_root: Optional[str]) -> List[str]:
    """The checklist's last lines: how to point the run at the files.

    Without a ``data_root`` override the advice names
    ``--cfg-options data_root=DIR``; with one it does not repeat the flag
    just passed, but says what was not found under the given root and
    which missing paths lie outside it.
    """
    if not data_root:
        return ['Override any of them with --cfg-options KEY=PATH; move a '
                'whole dataset with --cfg-options data_root=DIR.']
    prefix = data_root.rstrip('/') + '/'
    local = [c for c in missing if c.kind in ('file', 'dir')]
    under = [c for c in local if c.path.startswith(prefix)]
    outside = [c for c in local if not c.path.startswith(prefix)]
    lines = []
    if under:
        names = sorted({c.path[len(prefix):] + ('/' if c.kind == 'dir'
                                                 else '')
                        for c in under})
        found = 'does not exist' if not osp.isdir(data_root) else \
            'exists but lacks them'
        lines.append(f'Not found under the data_root you gave ({data_root!r}'
                     f'; the folder {found}): ' + ', '.join(names) +
                     '. Point data_root at the folder that holds them.')
    if outside:
        lines.append(f'Not under the data_root you gave ({data_root!r}), so '
                     'it did not move them: ' +
                     ', '.join(c.key for c in outside) + '.')
    lines.append('Override any path with --cfg-options KEY=PATH.')
    return lines


def format_checklist(missing: Sequence[PathCheck],
                     config: str = '',
                     data_root: Optional[str] = None) -> str:
    """The checklist printed for missing paths (grouped by where to get
    them).

    Args:
        missing (Sequence[PathCheck]): The paths not found.
        config (str): The config file, for the message.
        data_root (str, optional): ``data_root`` given with
            ``--cfg-options`` (the advice then does not repeat that flag).
    """
    lines = [
        f'{len(missing)} path(s) needed by {config or "the config"} are '
        'missing; nothing was built:'
    ]
    groups: dict = {}
    for check in missing:
        groups.setdefault(check.hint, []).append(check)
    for hint, checks in groups.items():
        for check in checks:
            lines.append(f'  [ ] {check.key} = {check.path!r} '
                         f'({_MISSING[check.kind]})')
        lines.append(f'      get it: {hint}')
    lines += _closing_advice(missing, data_root)
    return '\n'.join(lines)


#: why an input of each kind is listed
_MISSING = {
    'file': 'no such file',
    'dir': 'no such folder',
    'hub': 'hub id not in the local cache, and the hub cannot be reached',
    'url': 'not in the local cache, and its host cannot be reached',
}


class PreflightError(FileNotFoundError):
    """Raised by :func:`preflight` with the whole checklist as message."""


def preflight(cfg: Any,
              phases: Sequence[str] = ('train', ),
              config: str = '',
              data_root: Optional[str] = None) -> List[PathCheck]:
    """Raise :class:`PreflightError` listing every missing path at once.

    Args:
        cfg (Config | dict): The merged config.
        phases (Sequence[str]): See :func:`collect_path_checks`.
        config (str): The config file, for the message.
        data_root (str, optional): ``data_root`` the user gave with
            ``--cfg-options`` (see :func:`format_checklist`).

    Returns:
        list[PathCheck]: The paths checked (all present).
    """
    checks = collect_path_checks(cfg, phases)
    missing = [c for c in checks if not c.exists]
    if missing:
        raise PreflightError(format_checklist(missing, config, data_root))
    return checks


def run_preflight(cfg: Any,
                  phases: Sequence[str],
                  config: str = '',
                  cfg_options: Optional[dict] = None) -> None:
    """Command-line form of :func:`preflight`: print the checklist (rank 0
    only) and exit with status 2 when anything is missing.

    Args:
        cfg_options (dict, optional): the command's ``--cfg-options``; a
            ``data_root`` among them shapes the checklist's advice.
    """
    import os
    import sys

    from .config_check import ConfigError, check_config
    given = (cfg_options or {}).get('data_root', None)
    try:
        check_config(cfg, phases, config)  # mistakes, before any build
        preflight(cfg, phases, config,
                  given if isinstance(given, str) else None)
    except (ConfigError, PreflightError) as err:
        if os.environ.get('RANK', '0') == '0':
            print(err, file=sys.stderr, flush=True)
        raise SystemExit(2)
