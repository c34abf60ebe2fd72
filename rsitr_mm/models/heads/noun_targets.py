# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Clustering targets of OSFCM: tf-idf weighted object-noun distributions.

Two kinds of target rows over the K vocabulary nouns:

* image targets: the image's prior ``p`` (share of its captions' noun
  mentions) re-weighted by ``idf_k = log((1 + N) / (1 + df_k)) + 1``
  (``N`` training images, ``df_k`` images mentioning noun ``k``) and
  renormalised, so ubiquitous nouns (tree, building, road on RSICD) pull
  less than distinctive ones;
* caption targets: the nouns the caption itself mentions (counts, same idf,
  renormalised). A caption is never pulled towards nouns it does not
  mention; a caption mentioning no vocabulary noun gets a zero row (no
  loss).
"""
from collections import OrderedDict
from typing import List, Optional, Sequence

import numpy as np
import torch

from rsitr_mm.datasets.object_priors import (ObjectLexicon, ObjectPriors,
                                             extract_object_nouns)


def idf_weights(priors: ObjectPriors) -> np.ndarray:
    """Smoothed inverse document frequency ``(K,)`` of the vocabulary."""
    n = float(max(priors.num_images, 1))
    df = np.asarray(priors.doc_freq, dtype=np.float64)
    return (np.log((1.0 + n) / (1.0 + df)) + 1.0).astype(np.float32)


def reweight_rows(table: np.ndarray, idf: np.ndarray) -> np.ndarray:
    """``table * idf`` with every non-zero row renormalised to sum 1."""
    out = table.astype(np.float32) * idf[None, :]
    sums = out.sum(axis=1, keepdims=True)
    return np.divide(out, sums, out=np.zeros_like(out), where=sums > 0)


class CaptionNounTargets:
    """Caption -> ``(K,)`` idf-weighted noun distribution, cached.

    Args:
        vocab (Sequence[str]): The K vocabulary nouns (canonical forms).
        lexicon (ObjectLexicon): Lexicon used to find nouns in captions.
        idf (np.ndarray): ``(K,)`` idf weights.
        cache_size (int): Number of captions whose rows are cached.
    """

    def __init__(self,
                 vocab: Sequence[str],
                 lexicon: ObjectLexicon,
                 idf: np.ndarray,
                 cache_size: int = 65536) -> None:
        self.column = {noun: k for k, noun in enumerate(vocab)}
        self.lexicon = lexicon
        self.idf = idf.astype(np.float32)
        self.cache_size = cache_size
        self._cache: 'OrderedDict[str, np.ndarray]' = OrderedDict()

    def row(self, caption: str) -> np.ndarray:
        """``(K,)`` float32 target of one caption (zeros: no noun)."""
        hit = self._cache.get(caption)
        if hit is not None:
            self._cache.move_to_end(caption)
            return hit
        counts = np.zeros(len(self.idf), dtype=np.float32)
        for noun in extract_object_nouns(caption, self.lexicon):
            k = self.column.get(noun)
            if k is not None:
                counts[k] += 1.0
        row = reweight_rows(counts[None], self.idf)[0]
        self._cache[caption] = row
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return row

    def __call__(self, captions: List[Optional[str]],
                 device: torch.device) -> torch.Tensor:
        """``(B, K)`` targets; ``None`` captions give zero rows."""
        rows = [
            self.row(c) if isinstance(c, str) else np.zeros_like(self.idf)
            for c in captions
        ]
        return torch.from_numpy(np.stack(rows)).to(device)


def _img_path_of(sample) -> Optional[str]:
    """``img_path`` (else ``filename``) of a DataSample or a plain dict."""
    if sample is None:
        return None
    meta = getattr(sample, 'metainfo', None)
    for key in ('img_path', 'filename'):
        if isinstance(meta, dict) and meta.get(key) is not None:
            return meta[key]
        if isinstance(sample, dict) and sample.get(key) is not None:
            return sample[key]
        value = getattr(sample, key, None)
        if isinstance(value, str):
            return value
    return None


def _text_of(sample) -> Optional[str]:
    text = sample.get('text') if isinstance(sample, dict) else getattr(
        sample, 'text', None)
    return text if isinstance(text, str) else None


class OSFCMSampleTargets:
    """OSFCM's per-sample inputs, computed in the data pipeline.

    A preparer of :class:`~rsitr_mm.datasets.transforms.PrepareCaptionData`:
    ``osfcm_prior_index`` (the image's row of the prior table, -1 when the
    image is unknown) and, with ``caption_nouns``, ``osfcm_caption_target``
    (the caption's ``(K,)`` noun target). Holds the priors' file index and
    the lexicon only (no weights).

    Args:
        priors (ObjectPriors): The head's priors.
        caption_nouns (CaptionNounTargets, optional): Caption targets; None
            when the head does not use them.
    """

    def __init__(self, priors: ObjectPriors,
                 caption_nouns: Optional[CaptionNounTargets]) -> None:
        priors.index('')  # build the file index once, before pickling
        self.priors = priors
        self.caption_nouns = caption_nouns

    def prepare_sample(self, sample) -> dict:
        path = _img_path_of(sample)
        out = dict(osfcm_prior_index=-1 if path is None else
                   self.priors.index(path))
        if self.caption_nouns is not None:
            text = _text_of(sample)
            out['osfcm_caption_target'] = self.caption_nouns.row(text) \
                if text is not None else np.zeros_like(
                    self.caption_nouns.idf)
        return out

    def collate_samples(self, items: Sequence[dict]) -> dict:
        out = dict(osfcm_prior_index=torch.tensor(
            [it['osfcm_prior_index'] for it in items], dtype=torch.long))
        if self.caption_nouns is not None:
            out['osfcm_caption_target'] = torch.from_numpy(
                np.stack([it['osfcm_caption_target'] for it in items]))
        return out
