# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Karpathy-json image-text retrieval dataset with scene labels."""
import json
import logging
import os.path as osp
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

from mmengine.fileio import exists, join_path
from mmengine.logging import print_log
from mmpretrain.datasets import BaseDataset
from mmpretrain.registry import DATASETS

from .label_sources import (LABEL_RULES, load_class_map, normalize_class_name,
                            read_text_utf8)

_DEFAULT = 'default'


@DATASETS.register_module()
class RSRetrievalDataset(BaseDataset):
    """Remote-sensing image-text retrieval dataset in Karpathy json format.

    The annotation file looks like::

        {"images": [{"filename": "airport_1.jpg", "split": "train",
                     "sentences": [{"raw": "many planes ..."}, ...],
                     "class": "airport"},      # optional
                    ...]}

    **Train mode** (``test_mode=False``) yields one item per caption:

    - ``text`` (str): the raw caption.
    - ``image_id`` (int): dense index of the image among the selected images.
    - ``text_id`` (int): dense index of the caption among the selected ones.
    - ``gt_label`` (int): scene class index, -1 when unknown.
    - ``img_path`` (str) and ``filename`` (str).

    **Test mode** yields one item per image: ``text`` (list of its
    captions), ``gt_text_id`` (their caption indices; with 5 captions, image
    k owns ``5k .. 5k+4``), ``gt_image_id`` (``[k] * 5``), ``image_id``,
    ``gt_label``, ``img_path`` and ``filename``. In both modes the dataset
    has ``img_size`` (number of images) and ``text_size`` (number of
    captions).

    **Scene labels** come, per image, from the first source that applies:
    the image's ``class`` (or ``label``) field in the json; ``class_map``;
    the dataset's ``label_rule``. Names are normalised (lower case, letters
    only). ``metainfo['classes']`` is the sorted union of ``FIXED_CLASSES``,
    the ``class_map`` classes and the names found over the *whole* json, so
    it is the same for every split (unless ``classes``/``metainfo`` is
    given, whose order is then kept). Images without a label get -1 and one
    warning with their count.

    Args:
        ann_file (str): Karpathy json, relative to ``data_root`` unless
            absolute.
        data_root (str): Root of ``ann_file``, ``data_prefix`` and
            ``class_map``. Defaults to ''.
        data_prefix (str | dict): Image folder, ``dict(img_path=...)``.
            Defaults to ``dict(img_path='')``.
        split (str | Sequence[str]): ``'train'``, ``'val'``, ``'test'`` or a
            list of them (merged in json order). Defaults to ``'train'``.
        test_mode (bool): One item per image instead of per caption.
            Defaults to False.
        pipeline (Sequence): Transforms. Defaults to ().
        class_map (str, optional): Folder of ``<Class>.txt`` filename lists
            or a ``filename,class`` csv (see
            :func:`~rsitr_mm.datasets.label_sources.load_class_map`).
            Relative paths are joined with ``data_root`` (falling back to the
            path as given if only that exists). Defaults to None.
        captions_per_image (int, optional): Required caption count per image
            in test mode; None disables the check. Defaults to 5.
        check_images (bool): Check at load time that every selected image
            file exists. Defaults to False (a missing image then fails in
            ``LoadImageFromFile`` with its path).
        label_rule (str | callable | None): Rule ``(filename, captions) ->
            name | None`` used when neither the json nor ``class_map`` gives
            a label; a key of
            :data:`~rsitr_mm.datasets.label_sources.LABEL_RULES`, a callable
            or None. Defaults to the class attribute ``LABEL_RULE``.
        image_cache (dict, optional): ``dict(cache_dir=...)`` serves
            ``LoadImageFromFile`` from a decoded-image cache (see
            :mod:`rsitr_mm.datasets.image_cache`). Defaults to None.
        **kwargs: Other arguments of :class:`mmpretrain.datasets.BaseDataset`
            (``metainfo``, ``classes``, ``indices``, ``lazy_init``, ...).
    """

    #: Default ``label_rule`` of the dataset (a key of ``LABEL_RULES``).
    LABEL_RULE: Optional[str] = None
    #: Classes always present in ``metainfo['classes']`` (e.g. UC Merced).
    FIXED_CLASSES: Optional[Tuple[str, ...]] = None
    SPLITS = ('train', 'val', 'test')

    def __init__(self,
                 ann_file: str,
                 data_root: str = '',
                 data_prefix: Union[str, dict] = dict(img_path=''),
                 split: Union[str, Sequence[str]] = 'train',
                 test_mode: bool = False,
                 pipeline: Sequence = (),
                 class_map: Optional[str] = None,
                 captions_per_image: Optional[int] = 5,
                 check_images: bool = False,
                 label_rule: Union[str, Callable, None] = _DEFAULT,
                 image_cache: Optional[dict] = None,
                 **kwargs) -> None:
        splits = [split] if isinstance(split, str) else list(split)
        bad = [s for s in splits if s not in self.SPLITS]
        if not splits or bad:
            raise ValueError(f'Unknown split {split!r} for {ann_file}: '
                             f'expected one of {self.SPLITS} or a list of '
                             'them.')
        self.split = split
        self._splits = set(splits)

        if label_rule == _DEFAULT:
            label_rule = self.LABEL_RULE
        if isinstance(label_rule, str):
            if label_rule not in LABEL_RULES:
                raise ValueError(f'Unknown label_rule {label_rule!r}: '
                                 f'expected one of {sorted(LABEL_RULES)}, '
                                 'a callable or None.')
            label_rule = LABEL_RULES[label_rule]
        self.label_rule = label_rule

        if class_map and data_root and not osp.isabs(class_map):
            joined = join_path(data_root, class_map)
            if exists(joined) or not exists(class_map):
                class_map = joined
        self.class_map = class_map
        if captions_per_image is not None and captions_per_image < 1:
            raise ValueError('captions_per_image must be a positive int or '
                             f'None, got {captions_per_image}.')
        self.captions_per_image = captions_per_image
        self.check_images = check_images
        self.img_size = 0
        self.text_size = 0
        super().__init__(
            ann_file=ann_file,
            data_root=data_root,
            data_prefix=data_prefix,
            test_mode=test_mode,
            pipeline=pipeline,
            **kwargs)
        if image_cache is not None:  # decoded-image cache (opt-in)
            from .image_cache import setup_image_cache
            setup_image_cache(self, image_cache)

    # ------------------------------------------------------------------ io
    def _read_images(self) -> List[dict]:
        """Read the json and check the keys of every image."""
        text = read_text_utf8(self.ann_file)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f'{self.ann_file} is not valid JSON (line '
                             f'{e.lineno}, column {e.colno}): {e.msg}') from e
        if not isinstance(data, dict) or not isinstance(
                data.get('images'), list):
            raise ValueError(f'{self.ann_file}: expected a Karpathy json '
                             'object with an "images" list.')
        images = data['images']
        for idx, img in enumerate(images):
            if not isinstance(img, dict):
                raise ValueError(f'{self.ann_file}: images[{idx}] is not an '
                                 'object.')
            for key in ('filename', 'split', 'sentences'):
                if key not in img:
                    name = img.get('filename', '?')
                    raise ValueError(
                        f'{self.ann_file}: images[{idx}] (filename '
                        f'{name!r}) has no key {key!r}.')
            if not isinstance(img['sentences'], list):
                raise ValueError(
                    f'{self.ann_file}: images[{idx}] (filename '
                    f'{img["filename"]!r}): "sentences" must be a list.')
            for j, sent in enumerate(img['sentences']):
                raw = sent.get('raw') if isinstance(sent, dict) else None
                if not isinstance(sent, dict) or 'raw' not in sent:
                    raise ValueError(
                        f'{self.ann_file}: images[{idx}] (filename '
                        f'{img["filename"]!r}) sentence {j} has no key '
                        "'raw'.")
                if not isinstance(raw, str) or not raw.strip():
                    raise ValueError(
                        f'{self.ann_file}: images[{idx}] (filename '
                        f'{img["filename"]!r}) sentence {j} is empty or not '
                        f'a string: {raw!r}.')
            if img['split'] not in self.SPLITS:
                hint = (" ('restval' images of the Karpathy files are "
                        "usually trained on: rename the split to 'train')"
                        if img['split'] == 'restval' else '')
                raise ValueError(
                    f'{self.ann_file}: images[{idx}] (filename '
                    f'{img["filename"]!r}) has split {img["split"]!r}, '
                    f'expected one of {self.SPLITS}{hint}.')
        self._check_duplicates(images)
        return images

    def _check_duplicates(self, images: List[dict]) -> None:
        """Refuse repeated filenames/imgids; warn on train/test leakage."""
        first: Dict[tuple, int] = {}
        splits_of: Dict[str, set] = {}
        for idx, img in enumerate(images):
            keys = [('filename', img['filename'])]
            if 'imgid' in img:
                keys.append(('imgid', img['imgid']))
            for key in keys:
                if key in first:
                    j = first[key]
                    if key[0] == 'filename' and \
                            images[j]['split'] != img['split']:
                        continue  # leakage, reported below
                    raise ValueError(
                        f'{self.ann_file}: images[{idx}] repeats {key[0]} '
                        f'{key[1]!r} of images[{j}]; expected every image '
                        'once.')
                first[key] = idx
            splits_of.setdefault(img['filename'], set()).add(img['split'])
        leaked = sorted(f for f, s in splits_of.items() if len(s) > 1)
        if leaked:
            print_log(
                f'{self.ann_file}: {len(leaked)} image(s) appear in more '
                f'than one split (train/test leakage inflates the scores), '
                f'e.g. {", ".join(leaked[:5])}.',
                logger='current',
                level=logging.WARNING)

    # -------------------------------------------------------------- labels
    def _label_names(self, images: List[dict],
                     class_map: Dict[str, str]) -> List[Optional[str]]:
        """Normalised class name (or None) of every image in the json."""
        fixed = self._given_classes() or self.FIXED_CLASSES
        names: List[Optional[str]] = []
        for idx, img in enumerate(images):
            value = img.get('class', img.get('label'))
            name = None
            if isinstance(value, bool) or value is None or value == '':
                pass
            elif isinstance(value, int):
                if not fixed or not 0 <= value < len(fixed):
                    raise ValueError(
                        f'{self.ann_file}: images[{idx}] (filename '
                        f'{img["filename"]!r}) has an integer label {value} '
                        'but no class list covers it; give class names or '
                        '`classes=`.')
                name = normalize_class_name(fixed[value])
            elif isinstance(value, str):
                name = normalize_class_name(value) or None
            else:
                raise ValueError(
                    f'{self.ann_file}: images[{idx}] (filename '
                    f'{img["filename"]!r}): label {value!r} must be a str '
                    'or int.')
            if name is None and class_map:
                name = class_map.get(osp.basename(img['filename']))
            if name is None and self.label_rule is not None:
                name = self.label_rule(img['filename'],
                                       [s['raw'] for s in img['sentences']])
                name = normalize_class_name(name) if name else None
            names.append(name)
        return names

    def _given_classes(self) -> Optional[Tuple[str, ...]]:
        """Classes given through ``classes=``/``metainfo``, if any."""
        classes = self._metainfo.get('classes')
        return tuple(classes) if classes else None

    # ---------------------------------------------------------------- load
    def load_data_list(self) -> List[dict]:
        """Parse the Karpathy json into train or test items."""
        images = self._read_images()
        class_map = load_class_map(self.class_map) if self.class_map else {}
        names = self._label_names(images, class_map)

        given = self._given_classes()
        if given is None:
            classes = set(self.FIXED_CLASSES or ()) | set(class_map.values())
            classes |= {n for n in names if n is not None}
            given = tuple(sorted(classes))
            self._metainfo['classes'] = given
        class_to_idx = {
            normalize_class_name(c): i
            for i, c in enumerate(given)
        }

        prefix = self.data_prefix.get('img_path', '') or ''
        items: List[dict] = []
        paths: List[str] = []
        n_unlabelled = 0
        text_id = 0
        image_id = 0
        cpi = self.captions_per_image
        for idx, img in enumerate(images):
            if img['split'] not in self._splits:
                continue
            filename = img['filename']
            captions = [s['raw'] for s in img['sentences']]
            if not captions or (self.test_mode and cpi is not None
                                and len(captions) != cpi):
                expected = cpi if self.test_mode and cpi else 'at least 1'
                raise ValueError(
                    f'{self.ann_file}: images[{idx}] (filename {filename!r}) '
                    f'has {len(captions)} captions, expected {expected}.')
            label = class_to_idx.get(names[idx], -1) if names[idx] else -1
            n_unlabelled += label < 0
            img_path = join_path(prefix, filename) if prefix else filename
            paths.append(img_path)
            text_ids = list(range(text_id, text_id + len(captions)))
            if self.test_mode:
                items.append(
                    dict(
                        text=captions,
                        gt_text_id=text_ids,
                        gt_image_id=[image_id] * len(captions),
                        image_id=image_id,
                        gt_label=label,
                        img_path=img_path,
                        filename=filename))
            else:
                for caption, tid in zip(captions, text_ids):
                    items.append(
                        dict(
                            text=caption,
                            image_id=image_id,
                            text_id=tid,
                            gt_label=label,
                            img_path=img_path,
                            filename=filename))
            text_id += len(captions)
            image_id += 1

        self.img_size = image_id
        self.text_size = text_id
        if not items:
            counts = {}
            for img in images:
                counts[img['split']] = counts.get(img['split'], 0) + 1
            raise ValueError(
                f'{self.ann_file}: split {self.split!r} has no image; the '
                f'file has {counts or "no images"}. Without a val split, '
                "use split='test' for validation, or convert with "
                'tools/dataset_converters/precomp_to_karpathy.py '
                '--val-from-train N (see docs/datasets.md).')
        if n_unlabelled:
            print_log(
                f'{n_unlabelled} of {image_id} images of split {self.split!r} '
                f'in {self.ann_file} have no scene label (gt_label=-1); give '
                'a class field, a class_map or a label rule to label them.',
                logger='current',
                level=logging.WARNING)
        if self.check_images:
            self._check_images(paths)
        return items

    def _get_unserialized_subset(self, indices):
        """``indices=`` subset, with dense ids and fresh sizes."""
        sub_data_list = super()._get_unserialized_subset(indices)
        image_ids: Dict[int, int] = {}
        text_ids: Dict[int, int] = {}
        for item in sub_data_list:
            image_ids.setdefault(item['image_id'], len(image_ids))
            for tid in item.get('gt_text_id', [item.get('text_id')]):
                if tid is not None:
                    text_ids.setdefault(tid, len(text_ids))
        for item in sub_data_list:
            item['image_id'] = image_ids[item['image_id']]
            if 'text_id' in item:
                item['text_id'] = text_ids[item['text_id']]
            if 'gt_text_id' in item:
                item['gt_text_id'] = [text_ids[t] for t in item['gt_text_id']]
                item['gt_image_id'] = [item['image_id']] * len(
                    item['gt_text_id'])
        self.img_size = len(image_ids)
        self.text_size = len(text_ids)
        return sub_data_list

    def prepare_data(self, idx: int):
        """Run the pipeline; a failure names the image file."""
        try:
            return super().prepare_data(idx)
        except Exception as e:  # noqa: BLE001  re-raised with the path
            path = self.get_data_info(idx).get('img_path')
            if path and str(path) not in str(e):
                raise RuntimeError(
                    f'cannot load image {path!r} (item {idx} of '
                    f'{self.ann_file}): {type(e).__name__}: {e}. Expected a '
                    'readable, non-empty image file.') from e
            raise

    def _check_images(self, paths: List[str]) -> None:
        """Raise one error listing the missing image files."""
        missing = [p for p in paths if not exists(p)]
        if missing:
            shown = ', '.join(missing[:5])
            raise FileNotFoundError(
                f'{len(missing)} of {len(paths)} images listed in '
                f'{self.ann_file} are missing, e.g. {shown}.')

    def extra_repr(self) -> List[str]:
        """Extra lines for ``repr``."""
        body = super().extra_repr()
        body.append(f'Split: \t{self.split}')
        body.append(f'Images / captions: \t{self.img_size} / '
                    f'{self.text_size}')
        return body
