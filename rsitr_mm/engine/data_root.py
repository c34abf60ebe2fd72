# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Make ``--cfg-options data_root=DIR`` move a whole dataset.

mmengine evaluates a config's variables once, when the file is read: the
dataloaders (and any caption file a user's model config names) hold copies
of ``data_root`` joined with their own paths, so overriding the top-level
``data_root`` afterwards changes nothing. :func:`reroot_data_paths`
applies such an override where it was meant: every string value of the
config equal to the file's ``data_root`` or starting with
``data_root + '/'`` is moved to the new root (dataset ``data_root``,
caches, and the BiGRU ``ann_files`` / OSFCM ``ann_file`` overrides of a
user's config; the shipped model configs name no data path: their
vocabulary and priors come from the training dataset, see
:class:`~rsitr_mm.engine.hooks.TrainDataToModelHook`). Absolute paths
elsewhere are left alone.
"""
import os.path as osp
from typing import Any, List, Optional, Tuple


def _reroot(value: str, old: str, new: str) -> Optional[str]:
    if value == old:
        return new
    prefix = old.rstrip('/') + '/'
    if value.startswith(prefix):
        return osp.join(new, value[len(prefix):])
    return None


def _walk(node: Any, old: str, new: str, key: str,
          changed: List[Tuple[str, str, str]]) -> Any:
    if isinstance(node, str):
        moved = _reroot(node, old, new)
        if moved is not None:
            changed.append((key, node, moved))
            return moved
        return node
    if isinstance(node, list):
        return [
            _walk(v, old, new, f'{key}.{i}', changed)
            for i, v in enumerate(node)
        ]
    if isinstance(node, tuple):
        return tuple(
            _walk(v, old, new, f'{key}.{i}', changed)
            for i, v in enumerate(node))
    if hasattr(node, 'items'):
        for k in list(node.keys()):
            node[k] = _walk(node[k], old, new,
                            f'{key}.{k}' if key else str(k), changed)
        return node
    return node


def reroot_data_paths(cfg: Any, old_root: Optional[str],
                      new_root: Optional[str]) -> List[Tuple[str, str, str]]:
    """Move every path under ``old_root`` to ``new_root`` in place.

    Args:
        cfg (Config | dict): The merged config (its ``data_root`` already
            holds ``new_root``).
        old_root (str, optional): ``data_root`` as the config file set it.
        new_root (str, optional): ``data_root`` after ``--cfg-options``.

    Returns:
        list[tuple[str, str, str]]: (key, old value, new value) of each
        change; empty when the root did not change.
    """
    if (not isinstance(old_root, str) or not isinstance(new_root, str)
            or not old_root or old_root.rstrip('/') == new_root.rstrip('/')):
        return []
    changed: List[Tuple[str, str, str]] = []
    for key in list(cfg.keys()):
        if key == 'data_root':
            continue
        cfg[key] = _walk(cfg[key], old_root, new_root, key, changed)
    return changed


def merge_cfg_options(cfg: Any, options: Optional[dict]) -> None:
    """``cfg.merge_from_dict(options)``, then re-root the data paths when
    ``options`` sets ``data_root`` (see :func:`reroot_data_paths`).

    Args:
        cfg (Config): The config read from the file.
        options (dict, optional): ``--cfg-options`` as parsed by
            ``DictAction``.
    """
    if not options:
        return
    from .config_check import check_cfg_options
    check_cfg_options(cfg, options)  # unknown keys: one error, no merge
    old_root = cfg.get('data_root', None)
    cfg.merge_from_dict(options)
    if 'data_root' in options:
        changed = reroot_data_paths(cfg, old_root, options['data_root'])
        if changed:
            print(f'data_root {old_root!r} -> {options["data_root"]!r}: '
                  f'moved {len(changed)} path(s)', flush=True)
