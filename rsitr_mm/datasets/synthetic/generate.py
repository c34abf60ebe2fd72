# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Generation of a synthetic aerial-scene caption dataset on disk.

Layout written by :func:`generate_synthetic_dataset`::

    OUT_DIR/
      images/<class>_<index:05d>.png
      dataset_synthetic.json    # Karpathy layout, one ``class`` per image
      classes.txt               # one scene class per line (sorted)

Every image ``i`` gets its own generator seeded from ``(seed, i)``, so the
output does not depend on ``num_workers`` or on the order work is done in.
"""
import json
import multiprocessing as mp
import numbers
import os
import os.path as osp
import sys
from typing import Optional, Sequence, Tuple, Union

import numpy as np
from PIL import Image

from .captions import tokenize, write_captions
from .render import render_scene
from .scene import SCENE_CLASSES, sample_scene

#: Smallest image side accepted (smaller images cannot show the objects).
MIN_IMAGE_SIZE = 32
#: Largest image side accepted.
MAX_IMAGE_SIZE = 1024
#: Captions per image.
CAPTIONS_PER_IMAGE = 5
#: Name of the annotation file.
ANN_FILE = 'dataset_synthetic.json'

SplitSpec = Sequence[Union[int, float]]


def image_rngs(seed: int, index: int) -> Tuple[np.random.Generator, ...]:
    """Independent generators for the scene, captions and pixels of one image.

    Args:
        seed (int): Dataset seed.
        index (int): Image index.

    Returns:
        tuple[numpy.random.Generator]: ``(scene_rng, caption_rng,
        render_rng)``.
    """
    children = np.random.SeedSequence([seed, 1, index]).spawn(3)
    return tuple(np.random.default_rng(c) for c in children)


def assign_classes(num_images: int, seed: int) -> list:
    """Balanced, shuffled scene class of every image."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0]))
    labels = np.resize(np.arange(len(SCENE_CLASSES)), num_images)
    rng.shuffle(labels)
    return [SCENE_CLASSES[i] for i in labels]


def assign_splits(num_images: int, counts: Tuple[int, int, int],
                  seed: int) -> list:
    """Split name of every image for ``(train, val, test)`` counts."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2]))
    order = rng.permutation(num_images)
    names = ['train'] * counts[0] + ['val'] * counts[1] + ['test'] * counts[2]
    splits = [''] * num_images
    for rank, idx in enumerate(order):
        splits[idx] = names[rank]
    return splits


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def resolve_split(split: SplitSpec, num_images: int) -> Tuple[int, int, int]:
    """Turn a ``(train, val, test)`` split into image counts.

    Args:
        split (Sequence[int | float]): Three integer counts that sum to
            ``num_images``, or three non-negative fractions that sum to 1
            (val and test are rounded, train takes the rest).
        num_images (int): Number of images.

    Returns:
        tuple[int, int, int]: ``(train, val, test)`` counts.

    Raises:
        ValueError: On a malformed split.
    """
    try:
        parts = list(split)
    except TypeError:
        parts = None
    if parts is None or len(parts) != 3 or not all(
            isinstance(p, numbers.Real) and not isinstance(p, bool)
            for p in parts):
        raise ValueError('split must be three numbers (train, val, test), '
                         f'got {split!r}')
    if any(p < 0 for p in parts):
        raise ValueError(f'split must be non-negative, got {split!r}')
    if all(_is_int(p) for p in parts):
        if sum(parts) != num_images:
            raise ValueError(
                f'split counts {tuple(parts)} sum to {sum(parts)}, expected '
                f'num_images={num_images}')
        return tuple(int(p) for p in parts)
    if abs(sum(parts) - 1.0) > 1e-6:
        raise ValueError(f'split fractions {tuple(parts)} sum to '
                         f'{sum(parts):g}, expected 1 (or give integer counts '
                         f'summing to num_images={num_images})')
    n_val = int(round(parts[1] * num_images))
    n_test = int(round(parts[2] * num_images))
    n_train = num_images - n_val - n_test
    if n_train < 0:
        raise ValueError(f'split {tuple(parts)} leaves no room for train '
                         f'with num_images={num_images}')
    return n_train, n_val, n_test


def make_image(index: int, seed: int, image_size: int,
               scene_class: str) -> Tuple[np.ndarray, dict, list]:
    """Sample, draw and describe one image (no disk access).

    Args:
        index (int): Image index.
        seed (int): Dataset seed.
        image_size (int): Side in pixels.
        scene_class (str): One of :data:`~.scene.SCENE_CLASSES`.

    Returns:
        tuple: ``(image, scene_dict, captions)``: a uint8 array of shape
        (image_size, image_size, 3), :meth:`~.scene.Scene.to_dict` of the
        scene and the list of captions.
    """
    scene_rng, caption_rng, render_rng = image_rngs(seed, index)
    scene = sample_scene(scene_class, scene_rng)
    captions = write_captions(scene, caption_rng, CAPTIONS_PER_IMAGE)
    image = render_scene(scene, image_size, render_rng)
    return image, scene.to_dict(), captions


def _image_name(scene_class: str, index: int) -> str:
    return f'{scene_class}_{index:05d}.png'


def _work(task: tuple) -> Tuple[int, dict, list]:
    """Worker: make one image, save it, return its annotation."""
    index, seed, image_size, scene_class, img_dir = task
    image, scene, captions = make_image(index, seed, image_size, scene_class)
    Image.fromarray(image, 'RGB').save(
        osp.join(img_dir, _image_name(scene_class, index)), compress_level=1)
    return index, scene, captions


def _check_int(name: str, value, low: int, high: Optional[int] = None) -> int:
    if not _is_int(value):
        raise ValueError(f'{name} must be an integer, got {value!r}')
    if value < low or (high is not None and value > high):
        bound = f'>= {low}' if high is None else f'in [{low}, {high}]'
        raise ValueError(f'{name} must be {bound}, got {value}')
    return int(value)


def generate_synthetic_dataset(out_dir: str,
                               num_images: int = 2000,
                               image_size: int = 64,
                               seed: int = 0,
                               split: SplitSpec = (0.8, 0.1, 0.1),
                               num_workers: int = 0,
                               progress: bool = True) -> str:
    """Write a synthetic aerial-scene caption dataset.

    Images show top-down scenes of one of :data:`~.scene.SCENE_CLASSES`
    (balanced) with five distinct captions each. Same arguments give a
    byte-identical json and identical pixels whatever ``num_workers``.

    Args:
        out_dir (str): Output folder (created; existing files with the same
            names are overwritten, others are left alone).
        num_images (int): Number of images (>= 1). Defaults to 2000.
        image_size (int): Side of the square images in pixels, in
            ``[32, 1024]``. Defaults to 64.
        seed (int): Non-negative seed. Defaults to 0.
        split (Sequence[int | float]): ``(train, val, test)`` as integer
            counts summing to ``num_images`` or fractions summing to 1.
            Defaults to ``(0.8, 0.1, 0.1)``.
        num_workers (int): Worker processes; 0 or 1 works in this process.
            Defaults to 0.
        progress (bool): Show an mmengine progress bar. Defaults to True.

    Returns:
        str: Path of ``dataset_synthetic.json``.

    Raises:
        ValueError: On a bad argument.
    """
    num_images = _check_int('num_images', num_images, 1)
    image_size = _check_int('image_size', image_size, MIN_IMAGE_SIZE,
                            MAX_IMAGE_SIZE)
    seed = _check_int('seed', seed, 0)
    num_workers = _check_int('num_workers', num_workers, 0)
    counts = resolve_split(split, num_images)
    if not isinstance(out_dir, (str, os.PathLike)):
        raise ValueError(f'out_dir must be a path, got {out_dir!r}')
    out_dir = os.fspath(out_dir)

    img_dir = osp.join(out_dir, 'images')
    os.makedirs(img_dir, exist_ok=True)
    classes = assign_classes(num_images, seed)
    splits = assign_splits(num_images, counts, seed)
    tasks = [(i, seed, image_size, classes[i], img_dir)
             for i in range(num_images)]

    bar = None
    if progress:
        from mmengine.utils import ProgressBar
        bar = ProgressBar(num_images, file=sys.stdout)
    results = [None] * num_images
    if num_workers <= 1:
        for task in tasks:
            index, scene, captions = _work(task)
            results[index] = (scene, captions)
            if bar is not None:
                bar.update()
    else:
        chunk = max(1, min(64, num_images // (num_workers * 8)))
        with mp.get_context().Pool(num_workers) as pool:
            for index, scene, captions in pool.imap_unordered(
                    _work, tasks, chunksize=chunk):
                results[index] = (scene, captions)
                if bar is not None:
                    bar.update()
    if bar is not None:
        bar.file.write('\n')
        bar.file.flush()

    images = []
    for i, (scene, captions) in enumerate(results):
        sentids = list(
            range(i * CAPTIONS_PER_IMAGE, (i + 1) * CAPTIONS_PER_IMAGE))
        images.append({
            'filename':
            _image_name(classes[i], i),
            'imgid':
            i,
            'split':
            splits[i],
            'class':
            classes[i],
            'sentids':
            sentids,
            'sentences': [
                dict(raw=raw, tokens=tokenize(raw), imgid=i, sentid=sid)
                for raw, sid in zip(captions, sentids)
            ],
            'scene':
            scene,
        })
    data = dict(
        dataset='synthetic', classes=list(SCENE_CLASSES), images=images)
    ann_path = osp.join(out_dir, ANN_FILE)
    with open(ann_path, 'w', encoding='utf-8') as f:
        json.dump(data, f)
    with open(osp.join(out_dir, 'classes.txt'), 'w', encoding='utf-8') as f:
        f.write('\n'.join(SCENE_CLASSES) + '\n')
    return ann_path
