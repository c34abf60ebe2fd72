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
import re
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


def _read_split(caps_file: str, names_file: str,
                cpi: int) -> List[Tuple[str, List[str]]]:
    """Read one split as ``[(filename, captions), ...]`` with checks."""
    caps = _read_lines(caps_file)
    names = _read_lines(names_file)
    for lineno, cap in enumerate(caps, 1):
        if not cap.strip():
            raise ValueError(f'{caps_file}:{lineno}: empty caption.')
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
    return [(name.strip(), caps[k * cpi:(k + 1) * cpi])
            for k, name in enumerate(filenames)]


def precomp_to_karpathy(precomp_dir: str,
                        captions_per_image: int = 5,
                        dataset: Optional[str] = None,
                        suffix: str = '') -> Dict:
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
        for filename, caps in _read_split(*files, captions_per_image):
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
    return dict(dataset=dataset, images=images)


def convert_precomp(precomp_dir: str,
                    out_json: str,
                    captions_per_image: int = 5,
                    dataset: Optional[str] = None,
                    suffix: str = '') -> Dict:
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

    Returns:
        dict: The written annotation.
    """
    data = precomp_to_karpathy(precomp_dir, captions_per_image, dataset,
                               suffix)
    atomic_write_text(json.dumps(data, ensure_ascii=False), out_json)
    return data
