# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Several caption datasets as one training set, minus test leaks."""
import logging
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
from mmengine.logging import print_log
from mmpretrain.datasets import BaseDataset
from mmpretrain.registry import DATASETS

from .label_sources import normalize_class_name
from .leakage import (hash_matches, image_hashes, load_split,
                      normalize_caption, shared_captions)
from .rs_retrieval import RSRetrievalDataset


@DATASETS.register_module()
class LeakageSafeConcatDataset(BaseDataset):
    """Train-mode concatenation of RS retrieval datasets without test leaks.

    Every source (an :class:`RSRetrievalDataset` config, built in train
    mode) is grouped into images. A training image is **dropped**, with all
    its captions, when it leaks into any of the ``exclude`` test splits:

    * it shares at least ``min_shared_captions`` distinct normalised
      captions (:func:`~rsitr_mm.datasets.leakage.normalize_caption`) with
      one test image;
    * or, with ``match_filename=True``, it has the file name of a test
      image (off by default: across datasets the same name is not the same
      image, e.g. RSICD ``airport_1.jpg`` / RSITMD ``airport_1.tif``);
    * or, with ``hash_threshold`` set, its difference hash
      (:func:`~rsitr_mm.datasets.leakage.dhash`) is within
      ``hash_threshold`` bits of a test image's (needs the images of both
      sides: the source's own image folder and the ``img_dir`` of the
      excluded split).

    By default a source is only checked against the test splits of OTHER
    annotation files (``check_own_test=False``): the official splits of one
    benchmark are disjoint by image, and within a benchmark identical
    captions are mostly templates (UCM-Captions repeats its captions across
    the images of a class: 452 of its 1680 train images share >= 3 captions
    with a test image), not the same image.

    The rule and the counts (per source and excluded split) are logged and
    kept in :attr:`leakage_summary`.

    The kept items are re-indexed so that ``image_id`` (used by the losses
    to find positives: captions with the same ``image_id``) and ``text_id``
    are dense and unique across the sources, and ``gt_label`` points into
    the union of the sources' classes (``metainfo['classes']``, sorted).
    Each item also gets ``source`` (index of its dataset). ``img_size`` and
    ``text_size`` count the kept images and captions.

    Args:
        datasets (Sequence[dict]): configs of the sources (e.g.
            ``dict(type='RSICD', ann_file=..., split='train')``); their
            ``pipeline`` and ``test_mode`` are replaced.
        exclude (Sequence[dict]): the evaluated test splits:
            ``dict(ann_file=..., split='test', img_dir=None)``.
        min_shared_captions (int): see above. Defaults to 3.
        match_filename (bool): see above. Defaults to False.
        hash_threshold (int, optional): see above. Defaults to None (off).
        check_own_test (bool): also check a source against the test split
            of its own annotation file. Defaults to False.
        pipeline (Sequence): transforms applied to every item (one pipeline,
            so that all items have the same image size). Defaults to ().
        **kwargs: other arguments of :class:`mmpretrain.datasets.BaseDataset`
            (``lazy_init``, ``indices``, ...).
    """

    def __init__(self,
                 datasets: Sequence[dict],
                 exclude: Sequence[dict] = (),
                 min_shared_captions: int = 3,
                 match_filename: bool = False,
                 hash_threshold: Optional[int] = None,
                 check_own_test: bool = False,
                 pipeline: Sequence = (),
                 **kwargs) -> None:
        if not datasets:
            raise ValueError('LeakageSafeConcatDataset: `datasets` is empty; '
                             'give at least one dataset config.')
        if min_shared_captions < 1:
            raise ValueError('LeakageSafeConcatDataset: min_shared_captions '
                             f'must be >= 1, got {min_shared_captions}.')
        for i, ex in enumerate(exclude):
            if not isinstance(ex, dict) or 'ann_file' not in ex:
                raise ValueError(
                    f'LeakageSafeConcatDataset: exclude[{i}] must be a dict '
                    "with 'ann_file' (and 'split', default 'test'), got "
                    f'{ex!r}.')
        self.dataset_cfgs = [dict(d) for d in datasets]
        self.exclude = [dict(e) for e in exclude]
        self.min_shared_captions = min_shared_captions
        self.match_filename = match_filename
        self.hash_threshold = hash_threshold
        self.check_own_test = check_own_test
        self.img_size = 0
        self.text_size = 0
        self.leakage_summary: List[dict] = []
        kwargs.pop('test_mode', None)
        super().__init__(
            ann_file='', pipeline=pipeline, test_mode=False, **kwargs)

    # ------------------------------------------------------------- helpers
    def _build_sources(self) -> List[RSRetrievalDataset]:
        sources = []
        for i, cfg in enumerate(self.dataset_cfgs):
            cfg = dict(
                cfg,
                test_mode=False,
                pipeline=[],
                lazy_init=False,
                serialize_data=False)
            if isinstance(cfg.get('type'), str):
                ds = DATASETS.build(cfg)
            else:
                ds_type = cfg.pop('type', RSRetrievalDataset)
                ds = ds_type(**cfg)
            if not isinstance(ds, RSRetrievalDataset):
                raise TypeError(
                    f'LeakageSafeConcatDataset: datasets[{i}] is a '
                    f'{type(ds).__name__}; expected an RSRetrievalDataset '
                    '(RSICD, RSITMD, UCMCaptions, ...).')
            sources.append(ds)
        return sources

    @staticmethod
    def _images(ds: RSRetrievalDataset) -> 'OrderedDict[int, dict]':
        """Group a train-mode dataset's items by image."""
        images: 'OrderedDict[int, dict]' = OrderedDict()
        for k in range(len(ds)):
            item = ds.get_data_info(k)
            img = images.setdefault(
                item['image_id'],
                dict(
                    filename=item['filename'],
                    img_path=item['img_path'],
                    items=[],
                    captions=[]))
            img['items'].append(item)
            img['captions'].append(normalize_caption(item['text']))
        return images

    def _name(self, ex: dict) -> str:
        return f"{osp.basename(ex['ann_file'])}:{ex.get('split', 'test')}"

    # ---------------------------------------------------------------- load
    def load_data_list(self) -> List[dict]:
        """Build the sources, drop the leaking images, re-index."""
        sources = self._build_sources()
        tests = []
        for ex in self.exclude:
            imgs = load_split(ex['ann_file'], ex.get('split', 'test'))
            hashes = None
            if self.hash_threshold is not None:
                if not ex.get('img_dir'):
                    raise ValueError(
                        'LeakageSafeConcatDataset: hash_threshold is set, so '
                        f"exclude entry {self._name(ex)} needs 'img_dir' "
                        '(its image folder).')
                hashes = image_hashes(imgs, ex['img_dir'])
            tests.append(
                (self._name(ex), imgs, hashes, osp.abspath(ex['ann_file'])))

        classes = sorted({
            normalize_class_name(c)
            for ds in sources
            for c in ds.metainfo.get('classes', ())
        })
        class_idx = {c: i for i, c in enumerate(classes)}
        self._metainfo['classes'] = tuple(classes)

        rule = (f'drop a training image when it shares >= '
                f'{self.min_shared_captions} distinct normalised captions '
                'with one test image' +
                (' or has its file name' if self.match_filename else '') +
                (f' or its dHash is within {self.hash_threshold} bits'
                 if self.hash_threshold is not None else '') +
                ('' if self.check_own_test else
                 ' (a source is not checked against the test split of its '
                 'own annotation file)'))
        data_list: List[dict] = []
        summary: List[dict] = []
        image_id = text_id = 0
        for s, ds in enumerate(sources):
            images = list(self._images(ds).values())
            drop = np.zeros(len(images), dtype=bool)
            per_test: Dict[str, int] = {}
            hashes_src = None
            if self.hash_threshold is not None:
                hashes_src = image_hashes(
                    [dict(filename=im['img_path']) for im in images], '')
                missing = len(images) - len(hashes_src)
                if missing:
                    print_log(
                        f'LeakageSafeConcatDataset: {missing} of '
                        f'{len(images)} images of '
                        f'datasets[{s}] are missing; they are not '
                        'hash-checked.',
                        logger='current',
                        level=logging.WARNING)
            own = osp.abspath(ds.ann_file)
            for name, timgs, thashes, test_file in tests:
                if test_file == own and not self.check_own_test:
                    per_test[name] = None
                    continue
                hit = shared_captions(images, timgs) >= \
                    self.min_shared_captions
                if self.match_filename:
                    tnames = {t['filename'] for t in timgs}
                    hit |= np.array(
                        [im['filename'] in tnames for im in images],
                        dtype=bool)
                if hashes_src is not None:
                    matched = hash_matches(hashes_src, thashes,
                                           self.hash_threshold)
                    hit |= np.array(
                        [im['img_path'] in matched for im in images],
                        dtype=bool)
                per_test[name] = int(hit.sum())
                drop |= hit
            old_classes = ds.metainfo.get('classes', ())
            for keep, img in zip(~drop, images):
                if not keep:
                    continue
                for item in img['items']:
                    label = item.get('gt_label', -1)
                    if label is not None and label >= 0:
                        label = class_idx[normalize_class_name(
                            old_classes[label])]
                    data_list.append(
                        dict(
                            item,
                            image_id=image_id,
                            text_id=text_id,
                            gt_label=label,
                            source=s))
                    text_id += 1
                image_id += 1
            summary.append(
                dict(
                    source=f'{type(ds).__name__}({osp.basename(ds.ann_file)}'
                    f':{ds.split})',
                    images=len(images),
                    captions=sum(len(i['items']) for i in images),
                    dropped_per_test=per_test,
                    dropped=int(drop.sum()),
                    dropped_captions=sum(
                        len(i['items']) for i, d in zip(images, drop) if d),
                    kept=int((~drop).sum())))
        self.img_size, self.text_size = image_id, text_id
        self.leakage_summary = summary
        self.leakage_rule = rule
        lines = [
            f'LeakageSafeConcatDataset: {rule}; excluded test splits: '
            f"{', '.join(t[0] for t in tests) or 'none'}."
        ]
        for row in summary:
            per = ', '.join(
                f"{k}: {'own file, not checked' if v is None else v}"
                for k, v in row['dropped_per_test'].items())
            lines.append(
                f"  {row['source']}: {row['images']} images / "
                f"{row['captions']} captions; dropped {row['dropped']} "
                f"images / {row['dropped_captions']} captions ({per}); "
                f"kept {row['kept']} images")
        lines.append(f'  total: {self.img_size} images / {self.text_size} '
                     'captions kept')
        print_log('\n'.join(lines), logger='current')
        return data_list

    def extra_repr(self) -> List[str]:
        """Extra lines for ``repr``."""
        body = super().extra_repr()
        body.append(f'Images / captions: \t{self.img_size} / '
                    f'{self.text_size}')
        return body
