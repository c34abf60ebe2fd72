# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Loading images from the decoded-image cache."""
from typing import Optional, Union

import numpy as np
from mmcv.transforms import BaseTransform, LoadImageFromFile
from mmpretrain.registry import TRANSFORMS


@TRANSFORMS.register_module()
class LoadImageFromCache(BaseTransform):
    """``LoadImageFromFile`` served from a :class:`ImageCache`.

    Sets the same keys as ``LoadImageFromFile`` (``img``, ``img_shape``,
    ``ori_shape``) with the same values: the cache holds the images as that
    transform decodes them. Images missing from the cache are loaded by
    ``loader`` (the original transform). Usually inserted by the dataset's
    ``image_cache`` option (:func:`rsitr_mm.datasets.image_cache.
    attach_image_cache`) rather than written in a pipeline.

    Args:
        cache (ImageCache | str): the cache, or the path of its ``.json``
            index.
        loader (LoadImageFromFile | dict, optional): the transform it
            replaces (its ``to_float32`` is honoured; it loads cache
            misses). Defaults to ``LoadImageFromFile()``.
        copy (bool): give each image as a writable copy. ``False`` gives a
            read-only view of the cache's memory map, for pipelines whose
            next transform does not write to its input (then writing to it
            raises instead of corrupting the cache). Defaults to True.
    """

    def __init__(self,
                 cache,
                 loader: Optional[Union[LoadImageFromFile, dict]] = None,
                 copy: bool = True) -> None:
        from ..image_cache import ImageCache
        if isinstance(cache, str):
            cache = ImageCache(cache)
        self.cache = cache
        if loader is None:
            loader = LoadImageFromFile()
        elif isinstance(loader, dict):
            loader = TRANSFORMS.build(loader)
        self.loader = loader
        self.copy = copy

    def transform(self, results: dict) -> Optional[dict]:
        img = self.cache.get(results['img_path'], copy=self.copy)
        if img is None:
            return self.loader.transform(results)
        if self.loader.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(cache={self.cache.meta_file!r}, '
                f'loader={self.loader!r}, copy={self.copy})')
