# Copyright (c) rsitr_mm contributors. All rights reserved.
from .collate import COLLATE_TYPE, scoped_default_collate
from .label_sources import (LABEL_RULES, SYDNEY_CLASSES, UCM_CLASSES,
                            filename_prefix_label, load_class_map,
                            normalize_class_name, sydney_keyword_label,
                            ucm_index_label)
from .leakage import (leakage_report, load_split, normalize_caption,
                      split_overlap)
from .leakage_safe_concat import LeakageSafeConcatDataset
from .object_priors import (ObjectPriors, build_object_priors,
                            extract_object_nouns, load_lexicon)
from .precomp import convert_precomp, precomp_to_karpathy
from .rs_datasets import (RSICD, RSITMD, SydneyCaptions, SyntheticScenes,
                          UCMCaptions)
from .rs_retrieval import RSRetrievalDataset
from .transforms import *  # noqa: F401,F403

__all__ = [
    'COLLATE_TYPE', 'scoped_default_collate',
    'ObjectPriors', 'build_object_priors', 'extract_object_nouns',
    'load_lexicon',
    'RSRetrievalDataset', 'RSICD', 'RSITMD', 'UCMCaptions', 'SydneyCaptions',
    'SyntheticScenes', 'LABEL_RULES', 'UCM_CLASSES', 'SYDNEY_CLASSES',
    'normalize_class_name', 'load_class_map', 'filename_prefix_label',
    'ucm_index_label', 'sydney_keyword_label', 'precomp_to_karpathy',
    'convert_precomp', 'LeakageSafeConcatDataset', 'leakage_report',
    'load_split', 'normalize_caption', 'split_overlap'
]
