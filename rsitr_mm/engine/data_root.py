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

A user config that inherits a dataset config and sets its own ``data_root``
has datasets that still hold the *base* file's root (mmengine filled them in
when the base was read). So when no dataset lies under the file's
``data_root`` and all of them hold one other root, that root moves too.
Dataset roots under the file's ``data_root`` (several sources under
``data/``) keep their place below the new root. The printed line says how
many paths moved from which root, which dataset roots were left (several
unrelated ones: ambiguous) and says so when nothing moved.
"""
import os.path as osp
from typing import Any, List, Optional, Sequence, Tuple, Union

_LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def _reroot(value: str, olds: Sequence[str], new: str) -> Optional[str]:
    for old in olds:  # longest first: the most specific root wins
        if value.rstrip('/') == old.rstrip('/'):
            return new
        prefix = old.rstrip('/') + '/'
        if value.startswith(prefix):
            return osp.join(new, value[len(prefix):])
    return None


def _walk(node: Any, old: Sequence[str], new: str, key: str,
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


def reroot_data_paths(cfg: Any, old_root: Union[str, Sequence[str], None],
                      new_root: Optional[str]) -> List[Tuple[str, str, str]]:
    """Move every path under ``old_root`` to ``new_root`` in place.

    Args:
        cfg (Config | dict): The merged config (its ``data_root`` already
            holds ``new_root``).
        old_root (str | Sequence[str], optional): ``data_root`` as the
            config file set it, or several roots (each path moves from the
            longest root it lies under).
        new_root (str, optional): ``data_root`` after ``--cfg-options``.

    Returns:
        list[tuple[str, str, str]]: (key, old value, new value) of each
        change; empty when the root did not change.
    """
    olds = [old_root] if isinstance(old_root, str) else list(old_root or [])
    if not isinstance(new_root, str):
        return []
    olds = sorted({o for o in olds if isinstance(o, str) and o
                   and o.rstrip('/') != new_root.rstrip('/')},
                  key=len, reverse=True)
    if not olds:
        return []
    changed: List[Tuple[str, str, str]] = []
    for key in list(cfg.keys()):
        if key == 'data_root':
            continue
        cfg[key] = _walk(cfg[key], olds, new_root, key, changed)
    return changed


def dataset_roots(cfg: Any) -> List[str]:
    """Every ``data_root`` the dataloaders' datasets hold (wrappers
    included), in config order, without repeats."""
    roots: List[str] = []

    def visit(node: Any) -> None:
        if isinstance(node, (list, tuple)):
            for item in node:
                visit(item)
        elif hasattr(node, 'items'):
            root = node.get('data_root', None)
            if isinstance(root, str) and root and root not in roots:
                roots.append(root)
            for value in node.values():
                visit(value)

    for loader in _LOADERS:
        visit(cfg.get(loader, None))
    return roots


def inherited_roots(cfg: Any, file_root: Optional[str]
                    ) -> Tuple[List[str], List[str]]:
    """Dataset roots to move with ``file_root``, and those left alone.

    Returns:
        tuple[list[str], list[str]]: ``([root], [])`` when no dataset lies
        under ``file_root`` and all hold that one root (inherited from a
        base config); else ``([], roots outside file_root)``.
    """
    roots = dataset_roots(cfg)
    outside = [r for r in roots
               if not file_root or _reroot(r, [file_root], '.') is None]
    if file_root and len(outside) == len(roots) == 1:
        return outside, []
    return [], outside


def describe_moves(changed: Sequence[Tuple[str, str, str]],
                   roots: Sequence[str], file_root: Optional[str],
                   new_root: str, left: Sequence[str] = ()) -> str:
    """One line saying how many paths moved from which root (and which
    dataset roots were left)."""
    head = f'data_root {file_root!r} -> {new_root!r}: '
    tail = ''
    if left:
        tail = ('; not moved: datasets under ' +
                ', '.join(repr(r) for r in left) + ' (not under data_root; '
                'set their data_root, e.g. --cfg-options '
                'train_dataloader.dataset.data_root=DIR)')
    if not changed:
        return (head + 'moved 0 paths (no path of the config lies under '
                f'{", ".join(repr(r) for r in roots) or repr(file_root)})'
                + (tail or '; set each dataset\'s path, e.g. --cfg-options '
                   'test_dataloader.dataset.data_root=DIR'))
    longest_first = sorted(roots, key=len, reverse=True)
    counts = []
    for root in roots:
        n = sum(1 for _, old, _ in changed if next(
            (r for r in longest_first if _reroot(old, [r], new_root)),
            None) == root)
        if n:
            inherited = '' if root == file_root else \
                ' (inherited from a base config)'
            counts.append(f'{n} under {root!r}{inherited}')
    return head + f'moved {len(changed)} path(s): ' + ', '.join(counts) \
        + tail


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
    if not isinstance(old_root, str) or not old_root:
        old_root = None
    inherited, left = inherited_roots(cfg, old_root)
    roots = ([old_root] if old_root else []) + inherited
    cfg.merge_from_dict(options)
    new_root = options.get('data_root', None)
    if isinstance(new_root, str):
        changed = reroot_data_paths(cfg, roots, new_root)
        moved_from = [r for r in roots
                      if r.rstrip('/') != new_root.rstrip('/')]
        if changed or moved_from or left:
            print(describe_moves(changed, moved_from, old_root, new_root,
                                 left), flush=True)
