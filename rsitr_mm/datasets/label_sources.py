# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Scene-label sources for the remote-sensing caption datasets.

A scene label is looked up, per image, from the first source that applies
(see :class:`~rsitr_mm.datasets.RSRetrievalDataset`):

1. a ``class`` or ``label`` field of the image in the Karpathy json;
2. a *class map*: a folder of per-class ``<Class>.txt`` files that list image
   filenames (as RSICD ships its class lists), or a csv with
   ``filename,class`` rows (:func:`load_class_map`);
3. the dataset's rule, a function ``rule(filename, captions) -> name | None``
   (:data:`LABEL_RULES`).

All class names are normalised with :func:`normalize_class_name` (lower case,
letters only), so ``BareLand`` (RSICD class list), ``bareland`` (filename
prefix of ``bareland_1.jpg``) and ``Bare Land`` are the same class.
"""
import csv
import io
import os
import os.path as osp
import re
from collections import Counter
from typing import Callable, Dict, Optional, Sequence

from mmengine.fileio import get_text

#: The 21 UC Merced land-use classes in alphabetical order. UCM-Captions
#: image ``n.tif`` (n = 1..2100) belongs to class ``(n - 1) // 100``.
UCM_CLASSES = ('agricultural', 'airplane', 'baseballdiamond', 'beach',
               'buildings', 'chaparral', 'denseresidential', 'forest',
               'freeway', 'golfcourse', 'harbor', 'intersection',
               'mediumresidential', 'mobilehomepark', 'overpass', 'parkinglot',
               'river', 'runway', 'sparseresidential', 'storagetanks',
               'tenniscourt')

#: The 7 Sydney-Captions scene types (sorted). No public file maps Sydney
#: images to them; :func:`sydney_keyword_label` votes on caption keywords.
SYDNEY_CLASSES = ('airport', 'industrial', 'meadow', 'ocean', 'residential',
                  'river', 'runway')

_NON_LETTERS = re.compile(r'[^a-z]')
_WORDS = re.compile(r'[a-z]+')

LabelRule = Callable[[str, Sequence[str]], Optional[str]]


def normalize_class_name(name: str) -> str:
    """Normalise a class name: lower case, keep only the letters a-z.

    Args:
        name (str): A raw class name, e.g. ``'BareLand'`` or ``'bare_land'``.

    Returns:
        str: The normalised name, e.g. ``'bareland'``.
    """
    return _NON_LETTERS.sub('', str(name).lower())


def _stem(filename: str) -> str:
    """Base name of a filename without its extension."""
    return osp.splitext(osp.basename(filename))[0]


def load_class_map(path: str) -> Dict[str, str]:
    """Read a filename -> class map from a folder of lists or a csv file.

    * Folder: every ``<Class>.txt`` inside lists the image filenames of that
      class, one per line (blank lines are ignored).
    * File: a csv with two columns ``filename,class``; a first row
      ``filename,class`` (any case) is taken as a header and skipped.

    Filenames are compared by base name, so ``images/a_1.jpg`` and
    ``a_1.jpg`` are the same image.

    Args:
        path (str): The folder or the csv file.

    Returns:
        dict[str, str]: Base filename -> normalised class name.

    Raises:
        FileNotFoundError: If ``path`` does not exist or the folder holds no
            ``.txt`` file.
        ValueError: On a malformed csv row, an empty class name, or a
            filename listed under two different classes.
    """
    mapping: Dict[str, str] = {}
    where: Dict[str, str] = {}

    def add(filename: str, cls_name: str, source: str) -> None:
        key = osp.basename(filename.strip())
        cls_norm = normalize_class_name(cls_name)
        if not cls_norm:
            raise ValueError(f'{source}: empty class name {cls_name!r}.')
        if key in mapping and mapping[key] != cls_norm:
            raise ValueError(
                f'{source}: image {key!r} is listed as class {cls_norm!r} '
                f'but {where[key]} already gives class {mapping[key]!r}.')
        mapping[key] = cls_norm
        where[key] = source

    if osp.isdir(path):
        txt_files = sorted(f for f in os.listdir(path) if f.endswith('.txt'))
        if not txt_files:
            raise FileNotFoundError(
                f'class_map folder {path} holds no <Class>.txt file.')
        for fname in txt_files:
            full = osp.join(path, fname)
            cls_name = fname[:-len('.txt')]
            for lineno, line in enumerate(
                    read_text_utf8(full).split('\n'), 1):
                if line.strip():
                    add(line, cls_name, f'{full}:{lineno}')
        return mapping

    if not osp.isfile(path):
        raise FileNotFoundError(
            f'class_map {path} is neither a folder of <Class>.txt files nor '
            'a csv file.')
    rows = csv.reader(io.StringIO(read_text_utf8(path)))
    for lineno, row in enumerate(rows, 1):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != 2:
            raise ValueError(
                f'{path}:{lineno}: expected 2 columns "filename,class", got '
                f'{len(row)}: {row!r}.')
        if lineno == 1 and [c.strip().lower()
                            for c in row] == ['filename', 'class']:
            continue
        add(row[0], row[1], f'{path}:{lineno}')
    return mapping


def read_text_utf8(path: str) -> str:
    """A text file as UTF-8 (a byte-order mark is dropped).

    Raises:
        ValueError: the file is not UTF-8; the message names it and the
            offending byte offset.
    """
    try:
        return get_text(path, encoding='utf-8-sig')
    except UnicodeDecodeError as e:
        raise ValueError(
            f'{path} is not UTF-8 text (byte {e.start}: {e.reason}); save '
            'it as UTF-8.') from None


def filename_prefix_label(
    filename: str, captions: Sequence[str] = ()) -> Optional[str]:
    """Class from the filename prefix before the last ``_`` (RSICD, RSITMD).

    ``airport_12.jpg`` -> ``'airport'``; ``00001.jpg`` -> ``None``.

    Args:
        filename (str): The image filename.
        captions (Sequence[str]): Unused.

    Returns:
        str | None: The normalised prefix, or None without a letter prefix.
    """
    stem = _stem(filename)
    if '_' not in stem:
        return None
    name = normalize_class_name(stem.rsplit('_', 1)[0])
    return name or None


def ucm_index_label(
    filename: str, captions: Sequence[str] = ()) -> Optional[str]:
    """UC Merced class of UCM-Captions image ``n.tif``: ``(n - 1) // 100``.

    Args:
        filename (str): The image filename, e.g. ``'101.tif'``.
        captions (Sequence[str]): Unused.

    Returns:
        str | None: A name of :data:`UCM_CLASSES` (``'airplane'`` for
        ``101.tif``), or None if the stem is not an integer in 1..2100.
    """
    stem = _stem(filename)
    if not stem.isdigit():
        return None
    n = int(stem)
    if not 1 <= n <= 100 * len(UCM_CLASSES):
        return None
    return UCM_CLASSES[(n - 1) // 100]


def sydney_keyword_label(filename: str,
                         captions: Sequence[str]) -> Optional[str]:
    """Sydney scene type by a majority vote of caption keywords.

    Each caption casts one vote for every scene word of
    :data:`SYDNEY_CLASSES` it contains as a whole word, singular or plural
    (``river``/``rivers``), case-insensitive. The word with the most votes
    wins; a tie for the top or no vote at all gives None (label -1).

    Args:
        filename (str): Unused.
        captions (Sequence[str]): The image's captions.

    Returns:
        str | None: A name of :data:`SYDNEY_CLASSES` or None.
    """
    votes: Counter = Counter()
    for caption in captions:
        words = set(_WORDS.findall(caption.lower()))
        votes.update(w for w in SYDNEY_CLASSES
                     if w in words or w + 's' in words)
    if not votes:
        return None
    ranked = votes.most_common(2)
    if len(ranked) == 2 and ranked[0][1] == ranked[1][1]:
        return None
    return ranked[0][0]


#: Rule name -> rule function, for ``RSRetrievalDataset(label_rule=...)``.
LABEL_RULES: Dict[str, LabelRule] = {
    'filename_prefix': filename_prefix_label,
    'ucm_index': ucm_index_label,
    'sydney_keywords': sydney_keyword_label,
}
