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

* :class:`FastRandomResizedCrop`: the same random crop (the same draws
  as ``rand_crop_params``, made without mmcv's ``cache_randomness``
  wrapper, which copies itself at every call, unless
  ``cache_random_params`` is in use, and with ``random_sample()`` scaled
  as ``np.random.uniform`` does, checked to be exact), then one
  slice and one ``cv2.resize`` (what ``mmcv.imcrop`` / ``mmcv.imresize``
  reduce to for a crop inside the image and the ``cv2`` backend);
* :class:`FastRandomFlip`: the same single uniform draw that
  ``np.random.choice(p=...)`` makes, compared with the same cumulative
  probabilities (the image is the same flipped view);
* :class:`FastPackInputs`: an (H, W, C) uint8 image is split into the
  planes of a (C, H, W) tensor by ``cv2.split``; a flipped view is first
  flipped back from the unflipped array by ``cv2.flip`` into a per-thread
  scratch image (instead of a strided copy; flipping the freshly split
  planes in place, as done before, cost about 3x more here).

Fused, ``FastRandomResizedCrop`` -> ``FastRandomFlip`` ->
``FastPackInputs`` run as one call of the crop
(:meth:`FastRandomResizedCrop.fuse`): the resize writes into a scratch
image reused from call to call (per thread; it never leaves the call), a
flip goes into a second one, and ``cv2.split`` writes the result into the
planes of a new (C, H, W) tensor, which ``PackInputs`` packs as it is.
This saves a newly allocated image per call (the resize's output) and two
transforms' Python steps;
what is left of a 256 px TIFF sample's time once decoding is cached is
mostly the bicubic resize itself (see ``docs/benchmarks.md``).

Anything they do not cover (other backends, dtypes, several flip
directions, boxes and masks) goes to the parent class unchanged (for the
fused crop: to the three transforms one after the other).
:func:`use_fast_transforms` swaps them into a pipeline (and fuses them with
``fuse=True``); the image cache does both by default
(``image_cache=dict(..., fast_transforms=False)`` keeps the originals).
They can also be written in a pipeline by name.
"""
import math
import threading
from typing import Dict, Iterator, List, Optional, Tuple

import cv2
import numpy as np
import torch
from mmcv.transforms import BaseTransform, RandomFlip
from mmpretrain.datasets.transforms import PackInputs, RandomResizedCrop
from mmpretrain.registry import TRANSFORMS

_CV2_INTERP = {
    'nearest': cv2.INTER_NEAREST,
    'bilinear': cv2.INTER_LINEAR,
    'bicubic': cv2.INTER_CUBIC,
    'area': cv2.INTER_AREA,
    'lanczos': cv2.INTER_LANCZOS4,
}
#: ``cv2.flip`` codes of mmcv's ``imflip`` directions
_FLIP_CODES = {'horizontal': 1, 'vertical': 0, 'diagonal': -1}
# scratch images of the fused path, per thread: they never leave a call
_SCRATCH = threading.local()
# the undecorated sampler: mmcv's ``cache_randomness`` descriptor copies
# itself on every attribute access (about 15 us a call)
_RAND_CROP_PARAMS = RandomResizedCrop.__dict__['rand_crop_params'].func
# (low, high) -> whether low + (high - low) * random_sample() gives what
# np.random.uniform(low, high) gives on this build of numpy
_UNIFORM_BY_SAMPLE: Dict[Tuple[float, float], bool] = {}


def _uniform_by_sample_exact(low: float, high: float) -> bool:
    """Whether ``np.random.uniform(low, high)`` is reproduced exactly here.

    numpy's legacy ``uniform`` returns ``low + (high - low) * u`` for the
    next ``random_sample()`` value ``u`` (the same two 32-bit draws), in C
    doubles; the same sum in Python floats is equal unless numpy's build
    fuses the multiply-add (one rounding instead of two), which some
    compilers do on some platforms. Checked once per ``(low, high)`` on
    4096 draws of a private generator (the global state is not touched);
    a fused build differs on many of them.
    """
    key = (low, high)
    ok = _UNIFORM_BY_SAMPLE.get(key)
    if ok is None:
        span = high - low
        ok = math.isfinite(span)
        if ok:
            ref = np.random.RandomState(12345).uniform(low, high, 4096)
            u = np.random.RandomState(12345).random_sample(4096)
            ok = ref.tolist() == [low + span * x for x in u.tolist()]
        _UNIFORM_BY_SAMPLE[key] = ok
    return ok


def _crop_params(t: RandomResizedCrop,
                 img: np.ndarray) -> Tuple[int, int, int, int]:
    """``t.rand_crop_params(img)`` with the same draws, at less cost.

    The same sequence as mmpretrain's sampler: per attempt a crop area
    fraction and a log aspect ratio (each one ``random_sample()`` scaled as
    ``np.random.uniform`` scales it, see :func:`_uniform_by_sample_exact`),
    then, for the first crop that fits, ``np.random.randint`` for the top
    and left offsets; after ``max_attempts`` misses the central crop (no
    draw). Falls back to the sampler itself when the ranges are not plain
    numbers or the scaling is not exact on this platform.
    """
    lo_hi, ar = t.crop_ratio_range, t.aspect_ratio_range
    if not (isinstance(lo_hi, (tuple, list)) and isinstance(ar, (tuple, list))
            and len(lo_hi) == 2 and len(ar) == 2 and all(
            type(v) in (float, int) for v in (*lo_hi, *ar))
            and ar[0] > 0 and ar[1] > 0 and type(t.max_attempts) is int):
        return _RAND_CROP_PARAMS(t, img)
    lo, hi = float(lo_hi[0]), float(lo_hi[1])
    log_lo, log_hi = math.log(ar[0]), math.log(ar[1])
    if not (_uniform_by_sample_exact(lo, hi)
            and _uniform_by_sample_exact(log_lo, log_hi)):
        return _RAND_CROP_PARAMS(t, img)
    span, log_span = hi - lo, log_hi - log_lo
    h, w = img.shape[:2]
    area = h * w
    sample = np.random.random_sample
    for _ in range(t.max_attempts):
        target_area = (lo + span * sample()) * area
        aspect_ratio = math.exp(log_lo + log_span * sample())
        target_w = int(round(math.sqrt(target_area * aspect_ratio)))
        target_h = int(round(math.sqrt(target_area / aspect_ratio)))
        if 0 < target_w <= w and 0 < target_h <= h:
            top = np.random.randint(0, h - target_h + 1)
            left = np.random.randint(0, w - target_w + 1)
            return top, left, target_h, target_w
    # no fit: the central crop of the nearest allowed aspect ratio
    in_ratio = float(w) / float(h)
    if in_ratio < min(ar):
        target_w = w
        target_h = int(round(target_w / min(ar)))
    elif in_ratio > max(ar):
        target_h = h
        target_w = int(round(target_h * max(ar)))
    else:
        target_w, target_h = w, h
    return (h - target_h) // 2, (w - target_w) // 2, target_h, target_w


def _randomness_cached(t) -> bool:
    """Whether mmcv's ``cache_random_params`` is (or was) acting on ``t``.

    Then the fast paths step aside and the parent's decorated methods run.
    """
    d = t.__dict__
    if '_cache_enabled' in d or '_cache' in d:
        return True
    for name in getattr(t, '_methods_with_randomness', ()):
        if name in d:  # wrapped by cache_random_params
            return True
    return False


def _scratch(shape: Tuple[int, ...]) -> Tuple[np.ndarray, np.ndarray]:
    """Two reusable uint8 images of ``shape`` for the calling thread."""
    bufs: Dict[tuple, Tuple[np.ndarray, np.ndarray]] = getattr(
        _SCRATCH, 'bufs', None)
    if bufs is None:
        bufs = _SCRATCH.bufs = {}
    pair = bufs.get(shape)
    if pair is None:
        pair = bufs[shape] = (np.empty(shape, np.uint8),
                              np.empty(shape, np.uint8))
    return pair


@TRANSFORMS.register_module()
class FastRandomResizedCrop(RandomResizedCrop):
    """``RandomResizedCrop`` with the crop and resize done in one step.

    Same arguments, random draws and output as
    :class:`mmpretrain.datasets.transforms.RandomResizedCrop`.

    It can also take over the ``FastRandomFlip`` and ``FastPackInputs``
    that follow it in a pipeline (:meth:`fuse`, done by
    ``use_fast_transforms(..., fuse=True)``, which the image cache uses):
    one call then crops, resizes into a reused scratch image, flips into
    another and splits the result into the planes of the packed tensor,
    with the same random draws in the same order and the same packed
    output as the three transforms one after the other (which is what it
    runs for anything the fused path does not cover). One difference, in
    the input dict only (``PackInputs`` returns a new one): its ``img``
    ends as the packed tensor instead of the flipped (H, W, C) view.
    """

    _tail: Optional[Tuple['FastRandomFlip', 'FastPackInputs']] = None

    def fuse(self, flip: 'FastRandomFlip', pack: 'FastPackInputs') -> None:
        """Apply ``flip`` then ``pack`` after the crop, in the same call.

        Args:
            flip (FastRandomFlip): the pipeline's next transform.
            pack (FastPackInputs): the one after it.
        """
        if not (isinstance(flip, FastRandomFlip)
                and isinstance(pack, FastPackInputs)):
            raise TypeError('FastRandomResizedCrop.fuse: expected a '
                            'FastRandomFlip and a FastPackInputs, got '
                            f'{type(flip).__name__} and '
                            f'{type(pack).__name__}.')
        self._tail = (flip, pack)

    @property
    def fused(self) -> Tuple[BaseTransform, ...]:
        """The transforms applied after the crop in the same call."""
        return self._tail or ()

    def __iter__(self) -> Iterator[BaseTransform]:
        # mmcv's cache_random_params walks iterables: it then reaches the
        # fused flip as it would reach it in the pipeline
        return iter(self.fused)

    def _crop(self, results: dict) -> dict:
        img = results['img']
        code = _CV2_INTERP.get(self.interpolation)
        if (self.backend != 'cv2' or code is None
                or not isinstance(img, np.ndarray)
                or _randomness_cached(self)):
            return super().transform(results)
        top, left, h, w = _crop_params(self, img)
        # the crop always lies inside the image, so mmcv.imcrop is a slice
        img = cv2.resize(img[top:top + h, left:left + w],
                         tuple(self.scale[::-1]), interpolation=code)
        results['img'] = img
        results['img_shape'] = img.shape
        return results

    def _fused_path_ok(self, results: dict, img) -> bool:
        """Whether the fused path covers this call (else: one by one)."""
        flip, pack = self._tail
        return (type(img) is np.ndarray and img.dtype == np.uint8
                and img.ndim == 3 and 1 < img.shape[2] <= 4
                and self.backend == 'cv2'
                and self.interpolation in _CV2_INTERP
                # a str direction (the only one _direction_cdf accepts)
                and flip._direction_cdf() is not None
                and flip.direction in _FLIP_CODES
                and pack.input_key == 'img'
                and 'img' not in pack.algorithm_keys
                and 'img' not in pack.meta_keys
                and not _randomness_cached(self)
                and not _randomness_cached(flip)
                and results.get('gt_bboxes') is None
                and results.get('gt_keypoints') is None
                and results.get('gt_seg_map') is None)

    def transform(self, results: dict) -> Optional[dict]:
        tail = self._tail
        if tail is None:
            return self._crop(results)
        flip, pack = tail
        img = results['img']
        if not self._fused_path_ok(results, img):
            # the three transforms one after the other, as Compose runs them
            results = flip(self._crop(results))
            return None if results is None else pack(results)
        top, left, h, w = _crop_params(self, img)
        out_h, out_w = self.scale
        channels = img.shape[2]
        buf, flipped = _scratch((out_h, out_w, channels))
        img = cv2.resize(img[top:top + h, left:left + w], (out_w, out_h),
                         dst=buf,
                         interpolation=_CV2_INTERP[self.interpolation])
        results['img_shape'] = img.shape
        # FastRandomFlip's draw (the one np.random.choice makes)
        if np.random.random_sample() < flip._cdf[0]:
            results['flip'] = True
            results['flip_direction'] = flip.direction
            img = cv2.flip(img, _FLIP_CODES[flip.direction], flipped)
        else:
            results['flip'] = False
            results['flip_direction'] = None
        out = np.empty((channels, out_h, out_w), np.uint8)
        planes = list(out)
        for dst, plane in zip(planes, cv2.split(img, planes)):
            if plane is not dst:  # not written in place
                dst[...] = plane
        # PackInputs passes a tensor through: same keys, same sample
        results['img'] = torch.from_numpy(out)
        return pack.transform(results)

    def __repr__(self) -> str:
        text = super().__repr__()
        if self._tail is not None:
            text += ' + ' + ' + '.join(repr(t) for t in self._tail)
        return text


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
            # a flipped view (what RandomFlip returns) is flipped back from
            # the unflipped array by cv2.flip into a scratch image (flipping
            # the freshly written planes in place instead is slower)
            flip_v, flip_h = input_.strides[0] < 0, input_.strides[1] < 0
            src = input_[::-1 if flip_v else 1, ::-1 if flip_h else 1]
            if not src.flags.c_contiguous:
                src, flip_v, flip_h = np.ascontiguousarray(input_), 0, 0
            if flip_v or flip_h:
                code = -1 if flip_v and flip_h else int(flip_h)
                src = cv2.flip(src, code, _scratch(src.shape)[1])
            h, w, c = input_.shape
            out = np.empty((c, h, w), np.uint8)
            planes = list(out)
            for dst, plane in zip(planes, cv2.split(src, planes)):
                if plane is not dst:  # not written in place
                    dst[...] = plane
            return torch.from_numpy(out)
        return PackInputs.format_input(input_)


_FAST = {
    RandomResizedCrop: FastRandomResizedCrop,
    RandomFlip: FastRandomFlip,
    PackInputs: FastPackInputs,
}


def use_fast_transforms(transforms: List, fuse: bool = False) -> int:
    """Replace known transforms of a pipeline by their exact fast versions.

    Only instances of exactly ``RandomResizedCrop`` (mmpretrain),
    ``RandomFlip`` (mmcv) and ``PackInputs`` (mmpretrain) are replaced
    (subclasses may change behaviour, so they are kept); the new objects
    carry the same settings.

    Args:
        transforms (list): the ``transforms`` list of a ``Compose``,
            modified in place.
        fuse (bool): also let each ``FastRandomResizedCrop`` directly
            followed by a ``FastRandomFlip`` and a ``FastPackInputs`` take
            them over (:meth:`FastRandomResizedCrop.fuse`; the two are
            removed from the list). Same output, less work per image.
            Defaults to False.

    Returns:
        int: the number of transforms replaced by their fast versions
        (fusing does not change it).
    """
    n = 0
    for i, t in enumerate(transforms):
        fast = _FAST.get(type(t))
        if fast is not None:
            new = fast.__new__(fast)
            new.__dict__.update(t.__dict__)
            transforms[i] = new
            n += 1
    if fuse:
        i = 0
        while i + 2 < len(transforms):
            crop, flip, pack = transforms[i:i + 3]
            if (type(crop) is FastRandomResizedCrop and not crop.fused
                    and type(flip) is FastRandomFlip
                    and type(pack) is FastPackInputs):
                crop.fuse(flip, pack)
                del transforms[i + 1:i + 3]
            i += 1
    return n
