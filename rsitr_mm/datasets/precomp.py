# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Convert the "precomp" caption text files into a Karpathy json.

The precomp layout (one folder per dataset) holds, for every split
``S`` in ``train``/``val``/``test``:

- ``S_caps{suffix}.txt``: one caption per line, the captions of an image on
  consecutive lines (``captions_per_image`` of them);
- ``S_filename{suffix}.txt``: either one filename per image, or the filename
  repeated on every caption line (the ``test`` files of the common copies).
  The layout is told apart by the line counts.

Note: in the common UCM/Sydney copies the ``test`` files hold the Karpathy
*val* split, and the RSICD/RSITMD copies merge train+val into ``train``.
"""
import json
import os.path as osp
import random
import re
import warnings
from typing import Dict, List, Optional, Tuple

from ..utils.fileio import atomic_write_text

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
SPLITS = ('train', 'val', 'test')


def _read_lines(path: str) -> List[str]:
    """Lines of a text file without line endings (trailing newline ok)."""
    with open(path, encoding='utf-8') as f:
        lines = f.read().split('\n')
    if lines and lines[-1] == '':
        lines.pop()
    return [line.rstrip('\r') for line in lines]


def _split_files(precomp_dir: str, split: str,
                 suffix: str) -> Optional[Tuple[str, str]]:
    """Caption and filename files of a split, or None if absent."""
    candidates = [suffix, ''] if suffix else ['']
    for suf in candidates:
        caps = osp.join(precomp_dir, f'{split}_caps{suf}.txt')
        names = osp.join(precomp_dir, f'{split}_filename{suf}.txt')
        if osp.isfile(caps) or osp.isfile(names):
            if not (osp.isfile(caps) and osp.isfile(names)):
                missing = names if osp.isfile(caps) else caps
                raise FileNotFoundError(
                    f'{missing} is missing (its partner file exists).')
            return caps, names
    return None


def _read_split(caps_file: str, names_file: str, cpi: int,
                drop_blank: bool = False) -> List[Tuple[str, List[str]]]:
    """Read one split as ``[(filename, captions), ...]`` with checks.

    A blank caption is an error, unless ``drop_blank`` (the train split):
    then it is removed from its image (which keeps its other captions) and
    one warning names the images concerned.
    """
    caps = _read_lines(caps_file)
    names = _read_lines(names_file)
    blank = [i for i, cap in enumerate(caps) if not cap.strip()]
    if blank and not drop_blank:
        raise ValueError(f'{caps_file}:{blank[0] + 1}: empty caption '
                         '(blank captions are only dropped from the train '
                         'split).')
    if len(caps) % cpi:
        raise ValueError(
            f'{caps_file} has {len(caps)} lines, not a multiple of '
            f'captions_per_image={cpi}.')
    n_images = len(caps) // cpi
    if len(names) == n_images:
        filenames = names
        line_of = [k + 1 for k in range(n_images)]
    elif len(names) == len(caps):
        filenames, line_of = [], []
        for k in range(n_images):
            first = names[k * cpi]
            for j in range(k * cpi + 1, (k + 1) * cpi):
                if names[j] != first:
                    raise ValueError(
                        f'{names_file}:{j + 1}: filename {names[j]!r} '
                        f'differs from {first!r} on line {k * cpi + 1} '
                        f'inside the group of {cpi} captions of one image.')
            filenames.append(first)
            line_of.append(k * cpi + 1)
    else:
        raise ValueError(
            f'{names_file} has {len(names)} lines but {caps_file} has '
            f'{len(caps)} captions: expected {n_images} (one filename per '
            f'image) or {len(caps)} (one per caption line).')
    for k, name in enumerate(filenames):
        if not name.strip():
            raise ValueError(f'{names_file}:{line_of[k]}: empty filename.')
    out = []
    hit = {}
    for k, name in enumerate(filenames):
        group = caps[k * cpi:(k + 1) * cpi]
        kept = [c for c in group if c.strip()]
        if len(kept) != len(group):
            hit[name.strip()] = [k * cpi + j + 1 for j, c in enumerate(group)
                                 if not c.strip()]
        if kept:
            out.append((name.strip(), kept))
    if hit:
        empty = [n for n in hit if n not in {o[0] for o in out}]
        warnings.warn(
            f'{caps_file}: dropped {sum(map(len, hit.values()))} blank '
            f'caption(s) of {len(hit)} train image(s): ' + ', '.join(
                f'{n} (line {", ".join(map(str, lines))})'
                for n, lines in hit.items()) +
            (f'; images left without caption and dropped: {empty}'
             if empty else ''))
    return out


def precomp_to_karpathy(precomp_dir: str,
                        captions_per_image: int = 5,
                        dataset: Optional[str] = None,
                        suffix: str = '',
                        val_from_train: int = 0,
                        seed: int = 0) -> Dict:
    """Build a Karpathy-format dict from a precomp folder.

    Args:
        precomp_dir (str): Folder with ``{split}_caps{suffix}.txt`` and
            ``{split}_filename{suffix}.txt``. ``train`` and ``test`` are
            required, ``val`` is optional.
        captions_per_image (int): Captions per image. Defaults to 5.
        dataset (str, optional): Value of the ``dataset`` field. Defaults to
            the folder name without a ``_precomp`` suffix.
        suffix (str): File-name suffix to prefer, e.g. ``'_verify'`` for the
            ``train_caps_verify.txt``/``val_caps_verify.txt`` variant of the
            Sydney copy; a split without suffixed files falls back to the
            plain files. Defaults to ''.
        val_from_train (int): For copies without val files: move this many
            train images (drawn with ``random.Random(seed)``) to a new
            ``val`` split. An error if the folder has val files. Defaults
            to 0 (no val split made).
        seed (int): Seed of that draw. Defaults to 0.

    Returns:
        dict: ``{'dataset': str, 'images': [...]}`` with images in split
        order train, val, test; each has ``filename``, ``imgid``, ``split``,
        ``sentids`` and ``sentences`` (``raw``, ``tokens``, ``imgid``,
        ``sentid``).

    Raises:
        FileNotFoundError: If ``train`` or ``test`` files are absent.
        ValueError: On inconsistent files (the message names the file and
            line): line counts that do not match, a repeated filename that
            changes inside a group, an empty caption or filename, or a
            filename that occurs twice.
    """
    if captions_per_image < 1:
        raise ValueError(
            f'captions_per_image must be >= 1, got {captions_per_image}.')
    if dataset is None:
        base = osp.basename(osp.normpath(precomp_dir))
        dataset = base[:-len('_precomp')] if base.endswith(
            '_precomp') else base
    images: List[Dict] = []
    seen: Dict[str, str] = {}
    sent_id = 0
    for split in SPLITS:
        files = _split_files(precomp_dir, split, suffix)
        if files is None:
            if split == 'val':
                continue
            raise FileNotFoundError(
                f'{precomp_dir} has no {split}_caps{suffix}.txt / '
                f'{split}_filename{suffix}.txt.')
        for filename, caps in _read_split(
                *files, captions_per_image, drop_blank=split == 'train'):
            if filename in seen:
                raise ValueError(
                    f'{files[1]}: filename {filename!r} occurs twice '
                    f'(already in {seen[filename]}).')
            seen[filename] = files[1]
            img_id = len(images)
            sentences = []
            for cap in caps:
                sentences.append(
                    dict(
                        raw=cap,
                        tokens=_TOKEN.findall(cap.lower()),
                        imgid=img_id,
                        sentid=sent_id))
                sent_id += 1
            images.append(
                dict(
                    filename=filename,
                    imgid=img_id,
                    split=split,
                    sentids=[s['sentid'] for s in sentences],
                    sentences=sentences))
    if val_from_train:
        _make_val_split(images, val_from_train, seed, precomp_dir)
    return dict(dataset=dataset, images=images)


def _make_val_split(images: List[Dict], n: int, seed: int,
                    precomp_dir: str) -> None:
    """Move ``n`` seeded-random train images to a ``val`` split."""
    if any(img['split'] == 'val' for img in images):
        raise ValueError(
            f'{precomp_dir} has val files already; --val-from-train is for '
            'copies without a val split.')
    train = [i for i, img in enumerate(images) if img['split'] == 'train']
    if not 0 < n < len(train):
        raise ValueError(
            f'--val-from-train must be between 1 and {len(train) - 1} (the '
            f'train split of {precomp_dir} has {len(train)} images), got '
            f'{n}.')
    for i in random.Random(seed).sample(train, n):
        images[i]['split'] = 'val'


def convert_precomp(precomp_dir: str,
                    out_json: str,
                    captions_per_image: int = 5,
                    dataset: Optional[str] = None,
                    suffix: str = '',
                    val_from_train: int = 0,
                    seed: int = 0) -> Dict:
    """Convert a precomp folder and write the json atomically.

    The json is written to a temporary file in the target folder and moved
    into place with :func:`os.replace`, so ``out_json`` is never left
    half-written.

    Args:
        precomp_dir (str): See :func:`precomp_to_karpathy`.
        out_json (str): Output path.
        captions_per_image (int): Defaults to 5.
        dataset (str, optional): See :func:`precomp_to_karpathy`.
        suffix (str): See :func:`precomp_to_karpathy`.
        val_from_train (int): See :func:`precomp_to_karpathy`.
        seed (int): See :func:`precomp_to_karpathy`.

    Returns:
        dict: The written annotation.
    """
    data = precomp_to_karpathy(precomp_dir, captions_per_image, dataset,
                               suffix, val_from_train, seed)
    atomic_write_text(json.dumps(data, ensure_ascii=False), out_json)
    return data
