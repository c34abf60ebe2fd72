# Copyright (c) rsitr_mm contributors. All rights reserved.
"""A decoded-image cache for the small remote-sensing datasets.

Decoding JPEG / TIFF files is most of the cost of the train pipeline (see
``docs/benchmarks.md``). The four RS retrieval datasets fit in RAM once
decoded (RSICD: 10,921 x 224 x 224 x 3 bytes = 1.6 GB; RSITMD 0.9 GB; UCM
and Sydney about 0.4 GB each), so an opt-in cache stores every image exactly
as ``LoadImageFromFile`` returns it (uint8, native size: the resolution the
train pipeline crops from, so the results are identical to decoding each
time) in one flat file, read through a read-only memory map: the page
cache is shared by all data loader workers (and processes on one machine).

Opt in from the dataset config::

    train_dataloader = dict(dataset=dict(
        ..., image_cache=dict(cache_dir='data/rsicd/image_cache')))

With the cache, the train transforms after loading are most of the
per-image time; by default the cache also swaps in their exact faster
versions (:mod:`rsitr_mm.datasets.transforms.fast_transforms`; same random
draws, same output; ``fast_transforms=False`` keeps the originals).

The cache is built once (with a progress bar) on first use and re-used
while its key matches. The key is a SHA-256 of the ordered image list, each
file's size and modification time, and the decoding settings; a changed
file gives a new key (so a new cache, built again). Files are written
atomically (temporary file, ``fsync``, rename), so a killed build leaves no
half cache behind.
"""
import hashlib
import json
import mmap
import os
import os.path as osp
import tempfile
from typing import Dict, List, Optional, Sequence

import numpy as np

from rsitr_mm.utils.fileio import atomic_write_text

CACHE_VERSION = 1

#: ``LoadImageFromFile`` settings that change the decoded pixels.
_DECODE_KEYS = ('color_type', 'imdecode_backend')


def _decoder_settings(loader) -> Dict[str, str]:
    return {key: str(getattr(loader, key)) for key in _DECODE_KEYS}


def cache_key(paths: Sequence[str], settings: Dict[str, str]) -> str:
    """Content key of a cache: SHA-256 of paths, sizes, mtimes, settings.

    Args:
        paths (Sequence[str]): the image files, in cache order.
        settings (dict): decoding settings (``color_type``,
            ``imdecode_backend``).

    Raises:
        FileNotFoundError: a path is not a local file (the cache needs
            ``os.stat``); the message names it.
    """
    h = hashlib.sha256()
    h.update(json.dumps(dict(version=CACHE_VERSION, settings=settings),
                        sort_keys=True).encode())
    for path in paths:
        try:
            st = os.stat(path)
        except OSError as e:
            raise FileNotFoundError(
                f'image_cache: cannot stat image {path!r} ({e}); the cache '
                'needs local image files.') from None
        h.update(f'{path}\0{st.st_size}\0{st.st_mtime_ns}\n'.encode())
    return h.hexdigest()


class ImageCache:
    """Read-only view of a built cache (a flat uint8 file + a json index).

    Picklable: data loader workers re-open the memory map lazily, so they
    share the page cache instead of copying the images.

    Args:
        meta_file (str): the ``.json`` index written by :meth:`build`.
    """

    def __init__(self, meta_file: str) -> None:
        with open(meta_file, encoding='utf-8') as f:
            meta = json.load(f)
        if meta.get('version') != CACHE_VERSION:
            raise ValueError(f'image_cache: {meta_file} has version '
                             f'{meta.get("version")}, expected '
                             f'{CACHE_VERSION}; delete it to rebuild.')
        self.meta_file = meta_file
        self.data_file = osp.join(osp.dirname(meta_file), meta['data_file'])
        self.key: str = meta['key']
        self.paths: List[str] = meta['paths']
        self._offsets: List[int] = meta['offsets']
        self._shapes: List[List[int]] = meta['shapes']
        self._index = {p: i for i, p in enumerate(self.paths)}
        self._sizes = [int(np.prod(s)) for s in self._shapes]
        self._data: Optional[np.ndarray] = None

    def __len__(self) -> int:
        return len(self.paths)

    def __contains__(self, path: str) -> bool:
        return path in self._index

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state['_data'] = None  # re-opened by each worker
        return state

    @property
    def nbytes(self) -> int:
        return (self._offsets[-1] + int(np.prod(self._shapes[-1]))
                if self.paths else 0)

    def get(self, path: str, copy: bool = True) -> Optional[np.ndarray]:
        """The cached image of ``path`` (None if absent).

        Args:
            path (str): the image file.
            copy (bool): return a writable copy; otherwise a read-only view
                of the memory map (for a consumer that does not write to
                it). Defaults to True.

        Returns:
            np.ndarray | None: (H, W, C) or (H, W) uint8, as decoded by
            ``LoadImageFromFile``.
        """
        i = self._index.get(path)
        if i is None:
            return None
        if self._data is None:
            if self.nbytes == 0:
                return None
            # a plain read-only ndarray over the map: slicing it is much
            # cheaper than slicing an np.memmap
            with open(self.data_file, 'rb') as f:
                self._data = np.frombuffer(
                    mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ),
                    dtype=np.uint8)
        shape = self._shapes[i]
        start = self._offsets[i]
        size = self._sizes[i]
        img = self._data[start:start + size].reshape(shape)
        return img.copy() if copy else img

    @classmethod
    def build(cls,
              paths: Sequence[str],
              cache_dir: str,
              loader=None,
              name: str = 'images',
              progress: bool = True) -> 'ImageCache':
        """Open the cache of ``paths``, building it first if needed.

        Args:
            paths (Sequence[str]): image files; duplicates are stored once.
            cache_dir (str): folder of the cache files (created).
            loader (LoadImageFromFile, optional): the loading transform
                whose decoding settings to use. Defaults to
                ``LoadImageFromFile()``.
            name (str): file name prefix.
            progress (bool): show a progress bar while building.

        Returns:
            ImageCache: the opened cache. Images that cannot be decoded are
            left out (the loading transform then reads them itself and
            raises its usual error).
        """
        from mmcv.transforms import LoadImageFromFile
        if loader is None:
            loader = LoadImageFromFile()
        paths = list(dict.fromkeys(paths))
        settings = _decoder_settings(loader)
        key = cache_key(paths, settings)
        stem = f'{name}-{key[:20]}'
        meta_file = osp.join(cache_dir, stem + '.json')
        if osp.isfile(meta_file):
            cache = cls(meta_file)
            if cache.key == key and osp.isfile(cache.data_file):
                return cache
        decoder = LoadImageFromFile(
            to_float32=False, ignore_empty=True,
            color_type=loader.color_type,
            imdecode_backend=loader.imdecode_backend,
            backend_args=getattr(loader, 'backend_args', None))
        os.makedirs(cache_dir, exist_ok=True)
        data_name = stem + '.u8'
        fd, tmp = tempfile.mkstemp(prefix='.' + data_name + '.',
                                   suffix='.tmp', dir=cache_dir)
        kept, offsets, shapes = [], [], []
        bar = None
        if progress:
            from mmengine.utils import ProgressBar
            print(f'image_cache: decoding {len(paths)} images once into '
                  f'{cache_dir}')
            bar = ProgressBar(len(paths))
        try:
            offset = 0
            with os.fdopen(fd, 'wb') as f:
                for path in paths:
                    out = decoder.transform(dict(img_path=path))
                    if out is not None:
                        img = np.ascontiguousarray(out['img'],
                                                   dtype=np.uint8)
                        f.write(img.tobytes())
                        kept.append(path)
                        offsets.append(offset)
                        shapes.append(list(img.shape))
                        offset += img.nbytes
                    if bar is not None:
                        bar.update()
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, osp.join(cache_dir, data_name))
        except BaseException:
            if osp.exists(tmp):
                os.remove(tmp)
            raise
        if bar is not None:
            print()
        # the index last: its presence means the data file is complete
        atomic_write_text(
            json.dumps(dict(version=CACHE_VERSION, key=key,
                            data_file=data_name, settings=settings,
                            paths=kept, offsets=offsets, shapes=shapes)),
            meta_file)
        return cls(meta_file)


def attach_image_cache(dataset,
                       cache_dir: str,
                       progress: bool = True,
                       fast_transforms: bool = True) -> ImageCache:
    """Serve the dataset's ``LoadImageFromFile`` from a decoded-image cache.

    Builds (or opens) the cache of every image of ``dataset`` and replaces
    the first transform of its pipeline, which must be
    ``LoadImageFromFile``, by :class:`LoadImageFromCache` with the same
    settings. In distributed runs rank 0 builds while the others wait.
    With ``fast_transforms``, ``RandomResizedCrop``, ``RandomFlip`` and
    ``PackInputs`` of the pipeline are replaced by their exact faster
    versions (:mod:`rsitr_mm.datasets.transforms.fast_transforms`), the
    crop taking over the flip and the packing when they follow it
    (``use_fast_transforms(..., fuse=True)``): with decoding gone they are
    most of the per-image time, and their output is the same.

    Args:
        dataset (BaseDataset): a dataset whose data infos have
            ``img_path``.
        cache_dir (str): folder of the cache (the ``image_cache.cache_dir``
            key of the dataset config).
        progress (bool): show a progress bar while building.
        fast_transforms (bool): also swap in the exact fast transforms.
            Defaults to True.

    Returns:
        ImageCache: the cache.
    """
    from mmcv.transforms import LoadImageFromFile
    from mmengine.dist import barrier, get_rank, get_world_size

    from .transforms.loading import LoadImageFromCache
    transforms = getattr(dataset.pipeline, 'transforms', None)
    if not transforms or not isinstance(transforms[0], LoadImageFromFile):
        first = type(transforms[0]).__name__ if transforms else None
        raise ValueError(
            'image_cache: the dataset pipeline must start with '
            f'LoadImageFromFile (its output is what gets cached), got '
            f'{first}.')
    dataset.full_init()
    paths = [dataset.get_data_info(i)['img_path']
             for i in range(len(dataset))]
    loader = transforms[0]
    if get_world_size() > 1 and get_rank() != 0:
        barrier()  # rank 0 builds first
        cache = ImageCache.build(paths, cache_dir, loader, progress=False)
    else:
        cache = ImageCache.build(paths, cache_dir, loader, progress=progress)
        if get_world_size() > 1:
            barrier()
    transforms[0] = LoadImageFromCache(cache=cache, loader=loader)
    if fast_transforms:
        from .transforms.fast_transforms import (FastRandomResizedCrop,
                                                 use_fast_transforms)
        use_fast_transforms(transforms, fuse=True)
        if len(transforms) > 1 and type(
                transforms[1]) is FastRandomResizedCrop:
            # it only reads the image (fused or not; its output is a new
            # array or tensor): no copy needed
            transforms[0].copy = False
    return cache


def setup_image_cache(dataset, image_cache: dict) -> ImageCache:
    """Apply a dataset config's ``image_cache=dict(cache_dir=...)`` option.

    Args:
        dataset (BaseDataset): the dataset.
        image_cache (dict): ``cache_dir`` (str, required), ``progress``
            and ``fast_transforms`` (bool, optional; see
            :func:`attach_image_cache`).

    Returns:
        ImageCache: the cache.
    """
    allowed = {'cache_dir', 'progress', 'fast_transforms'}
    if not isinstance(image_cache, dict) or 'cache_dir' not in image_cache \
            or set(image_cache) - allowed:
        raise ValueError(
            'dataset config key image_cache: expected dict(cache_dir=str, '
            f'progress=bool, fast_transforms=bool (optional)), got '
            f'{image_cache!r}.')
    return attach_image_cache(dataset, **image_cache)
