# Copyright (c) rsitr_mm contributors. All rights reserved.
"""The remote-sensing caption benchmarks as registered datasets.

Each class only fixes how images without a ``class`` field in the json get
their scene label; everything else is :class:`RSRetrievalDataset`.
"""
from mmpretrain.registry import DATASETS

from .label_sources import SYDNEY_CLASSES, UCM_CLASSES
from .rs_retrieval import RSRetrievalDataset


@DATASETS.register_module()
class RSICD(RSRetrievalDataset):
    """RSICD (Lu et al., TGRS 2017): 10921 images, 224x224 jpg.

    Labels: filename prefix (``airport_12.jpg`` -> ``airport``, 30 classes).
    The 921 numeric names (``00001.jpg``) need ``class_map`` (RSICD's
    per-class ``<Class>.txt`` lists, 31 classes incl. ``playfields``).
    """
    LABEL_RULE = 'filename_prefix'


@DATASETS.register_module()
class RSITMD(RSRetrievalDataset):
    """RSITMD (Yuan et al., TGRS 2021): 4743 images, 256x256 tif.

    Labels: filename prefix (``boat_0.tif`` -> ``boat``, 33 classes).
    """
    LABEL_RULE = 'filename_prefix'


@DATASETS.register_module()
class UCMCaptions(RSRetrievalDataset):
    """UCM-Captions (Qu et al., 2016): 2100 images ``1.tif``..``2100.tif``.

    Labels: image ``n.tif`` -> UC Merced class ``(n - 1) // 100`` over the 21
    classes in alphabetical order (:data:`UCM_CLASSES`).
    """
    LABEL_RULE = 'ucm_index'
    FIXED_CLASSES = UCM_CLASSES


@DATASETS.register_module()
class SydneyCaptions(RSRetrievalDataset):
    """Sydney-Captions (Qu et al., 2016): 613 images, 500x500 tif.

    Labels: no file maps images to the 7 scene types, so a majority vote of
    scene keywords in the captions is used
    (:func:`~rsitr_mm.datasets.label_sources.sydney_keyword_label`); ties
    and captions without a scene word give -1.
    """
    LABEL_RULE = 'sydney_keywords'
    FIXED_CLASSES = SYDNEY_CLASSES


@DATASETS.register_module()
class SyntheticScenes(RSRetrievalDataset):
    """Generated demo scenes: every image carries a ``class`` field."""
    LABEL_RULE = None
