# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Overlaps between the splits of Karpathy-json caption datasets.

RSICD and RSITMD (and, to a lesser degree, the other remote-sensing caption
sets) share images and captions, so training on one and testing on another
can leak test items into training. This module finds such overlaps, by

* **caption set**: captions are normalised (:func:`normalize_caption`:
  lower case, punctuation to spaces, whitespace collapsed) and two images
  *share* ``n`` captions when their sets of normalised captions have ``n``
  elements in common (distinct captions; RSICD repeats captions within an
  image);
* **filename**: identical file names (optionally identical stems, e.g.
  ``airport_1.jpg`` and ``airport_1.tif``; across datasets the same stem
  does NOT mean the same image, so this is only a hint);
* **perceptual hash** (when the images are there): a 64-bit difference
  hash (:func:`dhash`) of every image; two images match when the Hamming
  distance of their hashes is at most a threshold.

:func:`split_overlap` compares two splits, :func:`leakage_report` every pair
of splits of two annotation files.
"""
import json
import os.path as osp
import re
from collections import defaultdict
from typing import (Callable, Dict, Iterable, List, Optional, Sequence, Union)

import numpy as np
from mmengine.fileio import get_text

_NON_ALNUM = re.compile(r'[^0-9a-z]+')

SPLITS = ('train', 'val', 'test')


def normalize_caption(text: str) -> str:
    """Lower case, punctuation to spaces, whitespace collapsed.

    ``'A  plane, parked.'`` -> ``'a plane parked'``.

    Args:
        text (str): a raw caption.

    Returns:
        str: the normalised caption.
    """
    return ' '.join(_NON_ALNUM.sub(' ', text.lower()).split())


def load_split(ann_file: str,
               splits: Union[None, str, Sequence[str]] = None) -> List[dict]:
    """Read the images of some splits of a Karpathy json.

    Args:
        ann_file (str): Karpathy json (``{"images": [{"filename", "split",
            "sentences": [{"raw"}, ...]}, ...]}``).
        splits (str | Sequence[str], optional): splits to keep; None keeps
            all.

    Returns:
        list[dict]: one dict per image, in json order: ``filename``,
        ``split``, ``index`` (position in the json) and ``captions`` (the
        tuple of normalised captions).
    """
    try:
        data = json.loads(get_text(ann_file))
    except FileNotFoundError as e:
        raise FileNotFoundError(
            f'Annotation file {ann_file!r} not found (needed for the '
            'leakage check).') from e
    except json.JSONDecodeError as e:
        raise ValueError(f'{ann_file} is not valid JSON: {e.msg}') from e
    if not isinstance(data, dict) or not isinstance(data.get('images'), list):
        raise ValueError(f'{ann_file}: expected a Karpathy json object with '
                         'an "images" list.')
    if isinstance(splits, str):
        splits = [splits]
    keep = None if splits is None else set(splits)
    out = []
    for idx, img in enumerate(data['images']):
        try:
            filename, split = img['filename'], img['split']
            caps = tuple(normalize_caption(s['raw']) for s in img['sentences'])
        except (KeyError, TypeError) as e:
            raise ValueError(
                f'{ann_file}: images[{idx}] needs "filename", "split" and '
                f'"sentences" with "raw" texts ({e!r}).') from e
        if keep is None or split in keep:
            out.append(
                dict(filename=filename, split=split, index=idx, captions=caps))
    return out


def _stem(name: str) -> str:
    return osp.splitext(osp.basename(name))[0]


def shared_captions(images_a: Sequence[dict],
                    images_b: Sequence[dict]) -> np.ndarray:
    """For every image of ``a``, the most captions it shares with one of
    ``b``.

    Args:
        images_a (Sequence[dict]): images with ``captions`` (normalised).
        images_b (Sequence[dict]): the same for the other side.

    Returns:
        np.ndarray: (len(images_a),) int, ``max_b |set(a) & set(b)|``
        (distinct normalised captions).
    """
    index: Dict[str, List[int]] = defaultdict(list)
    sets_b = [set(img['captions']) for img in images_b]
    for k, caps in enumerate(sets_b):
        for c in caps:
            index[c].append(k)
    out = np.zeros(len(images_a), dtype=np.int64)
    for i, img in enumerate(images_a):
        caps = set(img['captions'])
        counts: Dict[int, int] = defaultdict(int)
        for c in caps:
            for k in index.get(c, ()):
                counts[k] += 1
        out[i] = max(counts.values(), default=0)
    return out


def dhash(image, hash_size: int = 8) -> int:
    """Difference hash of an image (``hash_size ** 2`` bits).

    The image is converted to grey, resized to ``(hash_size + 1,
    hash_size)`` and each bit says whether a pixel is brighter than its
    right neighbour. Robust to re-encoding (jpg/tif) and rescaling.

    Args:
        image (PIL.Image.Image | str): an image or its path.
        hash_size (int): bits per side. Defaults to 8.

    Returns:
        int: the hash.
    """
    from PIL import Image
    if isinstance(image, str):
        with Image.open(image) as im:
            return dhash(im.copy(), hash_size)
    grey = image.convert('L').resize((hash_size + 1, hash_size),
                                     Image.Resampling.LANCZOS)
    px = np.asarray(grey, dtype=np.int32)
    bits = (px[:, 1:] > px[:, :-1]).flatten()
    return int(''.join('1' if b else '0' for b in bits), 2)


def hamming(a: int, b: int) -> int:
    """Number of differing bits of two hashes."""
    return bin(a ^ b).count('1')


def image_hashes(
        images: Sequence[dict],
        img_dir: str,
        progress: Optional[Callable[[int, int],
                                    None]] = None) -> Dict[str, int]:
    """:func:`dhash` of every image found in ``img_dir``.

    Args:
        images (Sequence[dict]): images with ``filename``.
        img_dir (str): the folder holding them.
        progress (Callable, optional): ``progress(done, total)``.

    Returns:
        dict[str, int]: filename -> hash, for the files that exist (missing
        files are skipped; compare the dict size with ``len(images)``).
    """
    out = {}
    for n, img in enumerate(images):
        path = osp.join(img_dir, img['filename'])
        if osp.isfile(path):
            out[img['filename']] = dhash(path)
        if progress is not None:
            progress(n + 1, len(images))
    return out


def hash_matches(hashes_a: Dict[str, int],
                 hashes_b: Dict[str, int],
                 threshold: int = 6) -> Dict[str, List[str]]:
    """Pairs of images whose hashes differ in at most ``threshold`` bits.

    Args:
        hashes_a (dict[str, int]): filename -> hash.
        hashes_b (dict[str, int]): the same for the other side.
        threshold (int): largest Hamming distance of a match. Defaults to 6
            (of 64 bits).

    Returns:
        dict[str, list[str]]: filename of ``a`` -> matching filenames of
        ``b`` (only files with a match).
    """
    if not hashes_a or not hashes_b:
        return {}
    names_b = list(hashes_b)
    bits_b = np.array([[(h >> s) & 1 for s in range(64)]
                       for h in hashes_b.values()],
                      dtype=np.uint8)
    out = {}
    for name, h in hashes_a.items():
        bits = np.array([(h >> s) & 1 for s in range(64)], dtype=np.uint8)
        dist = (bits_b != bits).sum(1)
        hits = np.nonzero(dist <= threshold)[0]
        if len(hits):
            out[name] = [names_b[k] for k in hits]
    return out


def split_overlap(images_a: Sequence[dict],
                  images_b: Sequence[dict],
                  min_shared: int = 3,
                  hashes_a: Optional[Dict[str, int]] = None,
                  hashes_b: Optional[Dict[str, int]] = None,
                  hash_threshold: int = 6) -> dict:
    """Overlap of two splits (seen from ``a``).

    Args:
        images_a (Sequence[dict]): images of split ``a`` (see
            :func:`load_split`).
        images_b (Sequence[dict]): images of split ``b``.
        min_shared (int): an ``a`` image *leaks* when it shares at least
            this many distinct captions with one ``b`` image. Defaults to 3.
        hashes_a (dict, optional): filename -> :func:`dhash` of ``a``.
        hashes_b (dict, optional): the same of ``b``.
        hash_threshold (int): see :func:`hash_matches`.

    Returns:
        dict: counts ``images``, ``unique_captions``,
        ``captions_in_b`` (unique captions of ``a`` found anywhere in
        ``b``), ``share_1``, ``share_k`` (images sharing >= 1 /
        ``min_shared`` captions with one ``b`` image), ``share_all`` (all
        of their distinct captions), ``same_filename``, ``same_stem``,
        ``hash_hashed`` / ``hash_match`` (None without hashes), and
        ``leaking``: the sorted filenames of ``a`` that share >=
        ``min_shared`` captions, the same filename, or a hash match.
    """
    caps_a = {c for img in images_a for c in img['captions']}
    caps_b = {c for img in images_b for c in img['captions']}
    shared = shared_captions(images_a, images_b)
    n_distinct = np.array([len(set(img['captions'])) for img in images_a],
                          dtype=np.int64)
    names_b = {img['filename'] for img in images_b}
    stems_b = {_stem(img['filename']) for img in images_b}
    same_name = [img['filename'] in names_b for img in images_a]
    same_stem = [_stem(img['filename']) in stems_b for img in images_a]
    matches = None
    if hashes_a is not None and hashes_b is not None:
        matches = hash_matches(hashes_a, hashes_b, hash_threshold)
    leaking = set()
    for i, img in enumerate(images_a):
        if (shared[i] >= min_shared or same_name[i]
                or (matches is not None and img['filename'] in matches)):
            leaking.add(img['filename'])
    return dict(
        images=len(images_a),
        unique_captions=len(caps_a),
        captions_in_b=len(caps_a & caps_b),
        share_1=int((shared >= 1).sum()),
        share_k=int((shared >= min_shared).sum()),
        share_all=int(((shared == n_distinct) & (shared > 0)).sum()),
        same_filename=int(sum(same_name)),
        same_stem=int(sum(same_stem)),
        hash_hashed=None if matches is None else len(hashes_a),
        hash_match=None if matches is None else len(matches),
        leaking=sorted(leaking))


def leakage_report(
        ann_a: str,
        ann_b: str,
        images_a: Optional[str] = None,
        images_b: Optional[str] = None,
        min_shared: int = 3,
        hash_threshold: int = 6,
        splits: Iterable[str] = SPLITS,
        progress: Optional[Callable[[str], None]] = None) -> List[dict]:
    """:func:`split_overlap` of every split of ``ann_a`` with every split of
    ``ann_b``.

    Args:
        ann_a (str): first Karpathy json.
        ann_b (str): second Karpathy json.
        images_a (str, optional): image folder of ``ann_a`` (enables the
            perceptual-hash comparison, with ``images_b``).
        images_b (str, optional): image folder of ``ann_b``.
        min_shared (int): see :func:`split_overlap`. Defaults to 3.
        hash_threshold (int): see :func:`hash_matches`. Defaults to 6.
        splits (Iterable[str]): split names compared. Defaults to
            train/val/test.
        progress (Callable, optional): receives a status line now and then.

    Returns:
        list[dict]: one row per non-empty split pair: ``split_a``,
        ``split_b`` and the fields of :func:`split_overlap`.
    """
    say = progress or (lambda msg: None)
    all_a, all_b = load_split(ann_a), load_split(ann_b)
    by_a = {s: [i for i in all_a if i['split'] == s] for s in splits}
    by_b = {s: [i for i in all_b if i['split'] == s] for s in splits}
    hashes_a = hashes_b = None
    if images_a and images_b:

        def tick(tag):

            def f(done, total):
                if done % 500 == 0 or done == total:
                    say(f'hashing {tag}: {done}/{total}')

            return f

        hashes_a = image_hashes(all_a, images_a, tick(images_a))
        hashes_b = image_hashes(all_b, images_b, tick(images_b))
    rows = []
    for sa, ia in by_a.items():
        for sb, ib in by_b.items():
            if not ia or not ib:
                continue
            say(f'comparing {sa} ({len(ia)} images) with {sb} '
                f'({len(ib)} images)')
            ha = hb = None
            if hashes_a is not None:
                names_a = {i['filename'] for i in ia}
                names_b = {i['filename'] for i in ib}
                ha = {k: v for k, v in hashes_a.items() if k in names_a}
                hb = {k: v for k, v in hashes_b.items() if k in names_b}
            row = split_overlap(ia, ib, min_shared, ha, hb, hash_threshold)
            rows.append(dict(split_a=sa, split_b=sb, **row))
    return rows
