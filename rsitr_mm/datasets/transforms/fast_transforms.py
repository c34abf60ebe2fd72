# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Exact, faster drop-ins for the RS train transforms.

Once images come from the decoded-image cache, the per-image time of the
train pipeline is spent in ``RandomResizedCrop`` (the bicubic resize and
about 20 us of Python around it), ``RandomFlip`` (``np.random.choice``)
and ``PackInputs`` (the HWC -> CHW copy, done by torch one element at a
time, and strided when the image was flipped). The classes
below are subclasses of those transforms with the same arguments, the same
random draws in the same order and the same outputs (equal arrays,
tensors, keys), only computed with fewer steps:

* :class:`FastRandomResizedCrop`: the same ``rand_crop_params`` (called
  without mmcv's ``cache_randomness`` wrapper, which copies itself at every
  call, unless ``cache_random_params`` is in use), then one
  slice and one ``cv2.resize`` (what ``mmcv.imcrop`` / ``mmcv.imresize``
  reduce to for a crop inside the image and the ``cv2`` backend);
* :class:`FastRandomFlip`: the same single uniform draw that
  ``np.random.choice(p=...)`` makes, compared with the same cumulative
  probabilities (the image is the same flipped view);
* :class:`FastPackInputs`: an (H, W, C) uint8 image is split into the
  planes of a (C, H, W) tensor by ``cv2.split``; a flipped view is split
  from the unflipped array and the planes are flipped in place (one pass
  over the pixels each, instead of a strided copy).

Anything they do not cover (other backends, dtypes, several flip
directions, boxes and masks) goes to the parent class unchanged.
:func:`use_fast_transforms` swaps them into a pipeline; the image cache
does so by default (``image_cache=dict(..., fast_transforms=False)`` keeps
the originals). They can also be written in a pipeline by name.
"""
from typing import List, Optional

import cv2
import numpy as np
import torch
from mmcv.transforms import RandomFlip
from mmpretrain.datasets.transforms import PackInputs, RandomResizedCrop
from mmpretrain.registry import TRANSFORMS

_CV2_INTERP = {
    'nearest': cv2.INTER_NEAREST,
    'bilinear': cv2.INTER_LINEAR,
    'bicubic': cv2.INTER_CUBIC,
    'area': cv2.INTER_AREA,
    'lanczos': cv2.INTER_LANCZOS4,
}
# the undecorated sampler: mmcv's ``cache_randomness`` descriptor copies
# itself on every attribute access (about 15 us a call)
_RAND_CROP_PARAMS = RandomResizedCrop.__dict__['rand_crop_params'].func


def _randomness_cached(t) -> bool:
    """Whether mmcv's ``cache_random_params`` is (or was) acting on ``t``.

    Then the fast paths step aside and the parent's decorated methods run.
    """
    d = t.__dict__
    return bool(d.get('_cache_enabled')) or '_cache' in d or any(
        name in d for name in getattr(t, '_methods_with_randomness', ()))


@TRANSFORMS.register_module()
class FastRandomResizedCrop(RandomResizedCrop):
    """``RandomResizedCrop`` with the crop and resize done in one step.

    Same arguments, random draws and output as
    :class:`mmpretrain.datasets.transforms.RandomResizedCrop`.
    """

    def transform(self, results: dict) -> dict:
        img = results['img']
        code = _CV2_INTERP.get(self.interpolation)
        if (self.backend != 'cv2' or code is None
                or not isinstance(img, np.ndarray)
                or _randomness_cached(self)):
            return super().transform(results)
        top, left, h, w = _RAND_CROP_PARAMS(self, img)
        # the crop always lies inside the image, so mmcv.imcrop is a slice
        img = cv2.resize(img[top:top + h, left:left + w],
                         tuple(self.scale[::-1]), interpolation=code)
        results['img'] = img
        results['img_shape'] = img.shape
        return results


@TRANSFORMS.register_module()
class FastRandomFlip(RandomFlip):
    """``RandomFlip`` with a cheaper random draw.

    Same arguments, random draws and output as
    :class:`mmcv.transforms.RandomFlip`.
    """

    _cdf_for: Optional[tuple] = None
    _cdf: Optional[np.ndarray] = None

    def _direction_cdf(self) -> Optional[np.ndarray]:
        """Cumulative probabilities ``np.random.choice`` would compute."""
        key = (self.prob, self.direction)
        if self._cdf_for != key:
            self._cdf_for, self._cdf = key, None
            if isinstance(self.direction, str) and isinstance(
                    self.prob, float):
                p = np.array([self.prob, 1. - self.prob], dtype=np.float64)
                # np.random.choice's own checks; anything else goes to it
                # (and gets its error)
                if np.all(p >= 0) and abs(p.sum() - 1) <= np.sqrt(
                        np.finfo(np.float64).eps):
                    cdf = p.cumsum()
                    cdf /= cdf[-1]
                    self._cdf = cdf
        return self._cdf

    def transform(self, results: dict) -> dict:
        cdf = self._direction_cdf()
        if cdf is None or _randomness_cached(self):
            return super().transform(results)
        # what _choose_direction's np.random.choice([direction, None], p)
        # does: one uniform draw, index = cdf.searchsorted(u, 'right')
        if np.random.random_sample() < cdf[0]:
            results['flip'] = True
            results['flip_direction'] = self.direction
            self._flip(results)
        else:
            results['flip'] = False
            results['flip_direction'] = None
        return results


@TRANSFORMS.register_module()
class FastPackInputs(PackInputs):
    """``PackInputs`` with a faster HWC -> CHW copy of uint8 images.

    Same arguments and output as
    :class:`mmpretrain.datasets.transforms.PackInputs`.
    """

    @staticmethod
    def format_input(input_):
        if (isinstance(input_, np.ndarray) and input_.ndim == 3
                and input_.dtype == np.uint8 and 1 < input_.shape[2] <= 4
                and input_.size):
            # a flipped view (what RandomFlip returns) is split from the
            # unflipped array, then each plane is flipped in place
            flip_v, flip_h = input_.strides[0] < 0, input_.strides[1] < 0
            src = input_[::-1 if flip_v else 1, ::-1 if flip_h else 1]
            if not src.flags.c_contiguous:
                src, flip_v, flip_h = np.ascontiguousarray(input_), 0, 0
            h, w, c = input_.shape
            out = torch.empty((c, h, w), dtype=torch.uint8)
            planes = list(out.numpy())
            got = cv2.split(src, planes)
            for dst, plane in zip(planes, got):
                if plane is not dst:  # not written in place
                    dst[...] = plane
            if flip_v or flip_h:
                code = -1 if flip_v and flip_h else int(flip_h)
                for plane in planes:
                    cv2.flip(plane, code, plane)
            return out
        return PackInputs.format_input(input_)


_FAST = {
    RandomResizedCrop: FastRandomResizedCrop,
    RandomFlip: FastRandomFlip,
    PackInputs: FastPackInputs,
}


def use_fast_transforms(transforms: List) -> int:
    """Replace known transforms of a pipeline by their exact fast versions.

    Only instances of exactly ``RandomResizedCrop`` (mmpretrain),
    ``RandomFlip`` (mmcv) and ``PackInputs`` (mmpretrain) are replaced
    (subclasses may change behaviour, so they are kept); the new objects
    carry the same settings.

    Args:
        transforms (list): the ``transforms`` list of a ``Compose``,
            modified in place.

    Returns:
        int: the number of transforms replaced.
    """
    n = 0
    for i, t in enumerate(transforms):
        fast = _FAST.get(type(t))
        if fast is not None:
            new = fast.__new__(fast)
            new.__dict__.update(t.__dict__)
            transforms[i] = new
            n += 1
    return n
