# Copyright (c) rsitr_mm contributors. All rights reserved.
"""A resumable on-disk index of image embeddings.

Layout of an index folder::

    meta.json          model identity, dtype, dim, progress, skipped files,
                       row count and sha256 of files.txt
    candidates.txt     every file to index, in order (written once)
    files.txt          the indexed files, one per row of the embeddings
                       (written when the build completes)
    .lock              held (``fcntl.flock``) while a build runs

    embeddings.npy     (capacity, D) float16/float32, memory-mapped; the
                       first ``meta['count']`` rows are valid

The two lists hold one JSON string per line, so any file name (newlines
included) round-trips. An index folder is data only: nothing read from it
is merged into a config or resolved as a type. Opening an index (format 3)
checks that ``meta.json`` parses, that ``embeddings.npy`` has the recorded
shape and dtype, that every block of :data:`HASH_ROWS` rows has the sha256
recorded at build time (swapped, reversed or edited rows are refused), that
no row is non-finite or all zero, and that ``files.txt`` has the recorded
sha256 (a reordered or edited list would map results to the wrong files);
each failure is one error naming the file (and the row). Indexes of formats
1 and 2 (no embeddings hash) are refused until migrated explicitly with
:meth:`ImageIndex.migrate` (``tools/retrieve.py migrate``).

Building commits one batch at a time: the rows are written and flushed,
then ``meta.json`` records the new ``cursor`` (candidates processed) and
``count`` (rows written). Every text file is written atomically (temporary
file + ``os.replace``), so a crash loses at most the batch in flight, and
running :meth:`ImageIndex.build` again on the folder continues from the
recorded cursor.
"""
import contextlib
import errno
import hashlib
import json
import os
import os.path as osp
import warnings
from typing import Dict, List, Sequence, Union

import numpy as np
import torch.nn as nn

from ..utils.fileio import atomic_write_text
from .model_loading import (check_identity, encode_image_tensors,
                            model_identity, model_pipeline)

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.tif', '.tiff', '.bmp')
FORMAT_VERSION = 3
#: Formats :meth:`ImageIndex.migrate` upgrades to :data:`FORMAT_VERSION`.
MIGRATABLE_VERSIONS = (1, 2)
#: Rows per recorded embeddings hash (``meta['embeddings_sha256']``).
HASH_ROWS = 65536

META_FILE = 'meta.json'
CANDIDATES_FILE = 'candidates.txt'
FILES_FILE = 'files.txt'
EMBEDDINGS_FILE = 'embeddings.npy'
LOCK_FILE = '.lock'


def _atomic_write_json(path: str, obj: dict) -> None:
    atomic_write_text(json.dumps(obj, indent=2, sort_keys=True), path)


def _read_lines(path: str, version: int = FORMAT_VERSION) -> List[str]:
    """A file list: JSON strings per line (format 2) or raw lines (1)."""
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'{path} is missing; the index is damaged, build it again')
    try:
        with open(path, encoding='utf-8') as f:
            lines = [line.rstrip('\n') for line in f if line.rstrip('\n')]
    except UnicodeDecodeError as e:
        raise ValueError(f'{path} is damaged (not UTF-8 text: {e}); build '
                         'the index again') from None
    if version < 2:
        return lines
    try:
        names = [json.loads(line) for line in lines]
    except ValueError as e:
        raise ValueError(f'{path} is damaged ({e}); build the index '
                         'again') from None
    if not all(isinstance(n, str) for n in names):
        raise ValueError(f'{path} is damaged (a line is not a file name); '
                         'build the index again')
    return names


def _list_text(names: Sequence[str]) -> str:
    return ''.join(json.dumps(n, ensure_ascii=False) + '\n' for n in names)


def _sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def _format_version(meta: dict, meta_path: str) -> int:
    """The index format, refusing values this version cannot read."""
    version = meta.get('format_version', 1)
    if version == FORMAT_VERSION:
        return version
    if version in MIGRATABLE_VERSIONS and not isinstance(version, bool):
        raise ValueError(
            f'{meta_path}: index format {version} records no hash of its '
            f'embeddings (format {FORMAT_VERSION} does); migrate it '
            'explicitly with `python tools/retrieve.py migrate '
            f'{osp.dirname(meta_path) or "."}` (ImageIndex.migrate), or '
            'build the index again')
    raise ValueError(
        f'{meta_path}: unknown format_version {version!r} (this version '
        f'reads format {FORMAT_VERSION} and migrates '
        f'{list(MIGRATABLE_VERSIONS)}); build the index again')


def _chunk_hashes(emb: np.ndarray, files: Sequence[str], emb_path: str,
                  rows: int = HASH_ROWS) -> List[str]:
    """sha256 of each block of ``rows`` rows, refusing bad rows.

    Raises:
        ValueError: a row holds NaN/inf or is all zero (row and file
            named).
    """
    hashes = []
    for start in range(0, len(emb), rows):
        block = np.ascontiguousarray(emb[start:start + rows])
        # a row sum (float64) is non-finite iff the row holds NaN or inf
        bad = ~np.isfinite(block.sum(axis=1, dtype=np.float64))
        zero = ~block.any(axis=1)
        for mask, what in ((bad, 'non-finite values (NaN or inf)'),
                           (zero, 'only zeros')):
            if mask.any():
                row = start + int(np.flatnonzero(mask)[0])
                name = files[row] if row < len(files) else '?'
                raise ValueError(
                    f'{emb_path}: row {row} ({name!r}) holds {what}, which '
                    f'is not an embedding ({int(mask.sum())} such row(s) in '
                    f'rows {start}-{start + len(block) - 1}); build the '
                    'index again')
        hashes.append(hashlib.sha256(block.tobytes()).hexdigest())
    return hashes


def _check_feats(feats: np.ndarray, names: Sequence[str],
                 first_row: int) -> None:
    """Refuse non-finite or all-zero embeddings before they are stored."""
    for i, row in enumerate(feats):
        what = ('non-finite values (NaN or inf)'
                if not np.isfinite(row).all() else
                'only zeros' if not row.any() else None)
        if what:
            raise ValueError(
                f'the model produced {what} for {names[i]!r} (row '
                f'{first_row + i} of the index); nothing was stored for '
                'it. Check the checkpoint (damaged weights give NaN) and '
                'the image')


def remove_stale_temp_files(index_dir: str) -> List[str]:
    """Remove the temporary files an interrupted build left behind.

    Only the names this module writes are touched (``.meta.json.*.tmp``,
    ``.files.txt.*.tmp``, ``.candidates.txt.*.tmp`` from atomic writes,
    ``embeddings.npy.tmp.npy`` from the final trim). Call it with the build
    lock held.

    Returns:
        list[str]: the removed files.
    """
    removed = []
    prefixes = tuple(f'.{n}.' for n in (META_FILE, FILES_FILE,
                                         CANDIDATES_FILE))
    for name in os.listdir(index_dir):
        if (name.startswith(prefixes) and name.endswith('.tmp')) or \
                name == EMBEDDINGS_FILE + '.tmp.npy':
            os.remove(osp.join(index_dir, name))
            removed.append(name)
    return removed


def _read_meta(index_dir: str) -> dict:
    meta_path = osp.join(index_dir, META_FILE)
    try:
        with open(meta_path, encoding='utf-8') as f:
            meta = json.load(f)
    except ValueError as e:
        raise ValueError(f'{meta_path} is damaged (not valid JSON: {e}); '
                         'build the index again') from None
    need = ('identity', 'embed_dim', 'dtype', 'count', 'cursor')
    if not isinstance(meta, dict) or any(k not in meta for k in need):
        raise ValueError(f'{meta_path} is damaged (expected the keys '
                         f'{list(need)}); build the index again')
    return meta


@contextlib.contextmanager
def build_lock(index_dir: str):
    """Hold an exclusive lock on ``index_dir`` for a build (or fail)."""
    import fcntl
    path = osp.join(index_dir, LOCK_FILE)
    with open(path, 'a') as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            raise RuntimeError(
                f'index {index_dir!r} is being built by another process '
                f'(it holds {path}); wait for that build to finish, or use '
                'another folder') from None
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def list_images(image_dir: str,
                extensions: Sequence[str] = IMAGE_EXTENSIONS) -> List[str]:
    """Image files under a folder, recursively, as sorted relative paths.

    Args:
        image_dir (str): the folder.
        extensions (Sequence[str]): accepted (lower-case) extensions; the
            match ignores case.

    Returns:
        list[str]: paths relative to ``image_dir`` with ``/`` separators.
    """
    if not osp.isdir(image_dir):
        raise FileNotFoundError(f'image folder {image_dir!r} does not exist')
    found = []
    for root, dirs, names in os.walk(image_dir):
        dirs.sort()
        for name in names:
            if osp.splitext(name)[1].lower() in extensions:
                rel = osp.relpath(osp.join(root, name), image_dir)
                found.append(rel.replace(os.sep, '/'))
    return sorted(found)


class ImageIndex:
    """Image embeddings on disk with their files and model identity.

    Use :meth:`build` to create or resume one and :meth:`load` to open it.

    Args:
        index_dir (str): the index folder.
        embeddings (np.ndarray): (N, D) L2-normalised embeddings (a
            memory map when loaded with ``mmap=True``).
        files (list[str]): the N files (relative to ``meta['root']`` when
            it is set).
        meta (dict): the content of ``meta.json``.
    """

    def __init__(self, index_dir: str, embeddings: np.ndarray,
                 files: List[str], meta: dict) -> None:
        if len(files) != len(embeddings):
            raise ValueError(
                f'index {index_dir!r}: {len(files)} files but '
                f'{len(embeddings)} embeddings')
        self.index_dir = index_dir
        self.embeddings = embeddings
        self.files = files
        self.meta = meta

    def __len__(self) -> int:
        return len(self.files)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}({self.index_dir!r}, '
                f'{len(self)} images, dim={self.meta["embed_dim"]}, '
                f'dtype={self.meta["dtype"]})')

    @property
    def identity(self) -> dict:
        """The model identity recorded at build time."""
        return self.meta['identity']

    @property
    def paths(self) -> List[str]:
        """Full paths of the indexed files."""
        root = self.meta.get('root')
        return [osp.join(root, f) if root else f for f in self.files]

    @property
    def skipped(self) -> Dict[str, str]:
        """``{file: reason}`` of the files that could not be indexed."""
        return dict(self.meta.get('skipped', {}))

    def check_model(self, identity: Union[dict, nn.Module]) -> None:
        """Raise ``ValueError`` unless ``identity`` matches the index's.

        Args:
            identity (dict | nn.Module): a :func:`model_identity` dict or
                the model itself.
        """
        if isinstance(identity, nn.Module):
            identity = model_identity(identity)
        check_identity(self.identity, identity, f'index {self.index_dir!r}')

    def search(self, queries, k: int = 5, **kwargs):
        """:func:`~rsitr_mm.apis.search.exact_topk` over this index."""
        from .search import exact_topk
        return exact_topk(queries, self.embeddings, k, **kwargs)

    # ------------------------------------------------------------------ #
    @classmethod
    def load(cls, index_dir: str, mmap: bool = True) -> 'ImageIndex':
        """Open a completed index.

        Args:
            index_dir (str): the index folder.
            mmap (bool): memory-map the embeddings (read-only) instead of
                reading them into RAM.

        Returns:
            ImageIndex: the index.
        """
        meta_path = osp.join(index_dir, META_FILE)
        if not osp.isfile(meta_path):
            raise FileNotFoundError(
                f'{index_dir!r} is not an image index (no {META_FILE})')
        meta = _read_meta(index_dir)
        _format_version(meta, meta_path)
        if not meta.get('complete'):
            raise RuntimeError(
                f'index {index_dir!r} is incomplete ({meta.get("cursor")} of '
                f'{meta.get("num_candidates")} files processed); run the '
                'build again on it to resume')
        emb, files = cls._open_data(index_dir, meta, mmap)
        recorded = meta.get('embeddings_sha256')
        emb_path = osp.join(index_dir, EMBEDDINGS_FILE)
        if not isinstance(recorded, list) or (not recorded and len(emb)):
            raise ValueError(
                f'{meta_path} records no embeddings_sha256 (mandatory in '
                f'format {FORMAT_VERSION}); build the index again')
        actual = _chunk_hashes(emb, files, emb_path)
        for i, (want, got) in enumerate(zip(recorded, actual)):
            if want != got:
                start = i * HASH_ROWS
                stop = min(start + HASH_ROWS, len(emb)) - 1
                raise ValueError(
                    f'{emb_path}: rows {start}-{stop} changed since the '
                    'index was built (sha256 differs from meta.json): '
                    'results would point to the wrong files; build the '
                    'index again')
        if len(recorded) != len(actual):
            raise ValueError(
                f'{emb_path}: {len(actual)} blocks of rows, {META_FILE} '
                f'records {len(recorded)}; build the index again')
        return cls(index_dir, emb, files, meta)

    @staticmethod
    def _open_data(index_dir: str, meta: dict, mmap: bool = True,
                   version: int = FORMAT_VERSION):
        """The ``count`` embedding rows and the file list, shape-checked
        and with the files hash verified (mandatory)."""
        emb_path = osp.join(index_dir, EMBEDDINGS_FILE)
        if not osp.isfile(emb_path):
            raise FileNotFoundError(
                f'{emb_path} is missing; build the index again')
        try:
            emb = np.load(emb_path, mmap_mode='r' if mmap else None)
        except (ValueError, OSError, EOFError) as e:
            raise ValueError(f'{emb_path} is damaged or truncated ({e}); '
                             'build the index again') from None
        count = int(meta['count'])
        if emb.ndim != 2 or emb.shape[0] < count or \
                emb.shape[1] != meta['embed_dim']:
            raise ValueError(
                f'{emb_path} has shape {emb.shape}, {META_FILE} says '
                f'({count}, {meta["embed_dim"]}); build the index again')
        if emb.dtype != np.dtype(meta['dtype']):
            raise ValueError(
                f'{emb_path} stores {emb.dtype}, {META_FILE} says '
                f'{meta["dtype"]}; build the index again')
        files_path = osp.join(index_dir, FILES_FILE)
        files = _read_lines(files_path, version)
        recorded = meta.get('files_sha256')
        if not recorded:
            raise ValueError(
                f'{osp.join(index_dir, META_FILE)} records no files_sha256 '
                f'(mandatory): {files_path} cannot be verified; build the '
                'index again')
        if _sha256_file(files_path) != recorded:
            raise ValueError(
                f'{files_path} changed since the index was built (sha256 '
                'differs from meta.json): its rows would map to the wrong '
                'files; build the index again')
        if len(files) != count:
            raise ValueError(
                f'{files_path} lists {len(files)} files, {META_FILE} records '
                f'{count} rows; build the index again')
        return emb[:count], files

    @classmethod
    def migrate(cls, index_dir: str) -> 'ImageIndex':
        """Upgrade a complete format 1 or 2 index to the current format.

        The embeddings and the file list are taken as they are (the files
        hash is checked when the old index recorded one), rows are checked
        (no NaN/inf, no all-zero row), the file list is rewritten one JSON
        string per line and the embeddings hash is recorded. Run it only on
        an index you trust: its rows are what the new hash certifies.

        Returns:
            ImageIndex: the migrated index.
        """
        meta_path = osp.join(index_dir, META_FILE)
        if not osp.isfile(meta_path):
            raise FileNotFoundError(
                f'{index_dir!r} is not an image index (no {META_FILE})')
        with build_lock(index_dir):
            meta = _read_meta(index_dir)
            version = meta.get('format_version', 1)
            if version == FORMAT_VERSION:
                return cls.load(index_dir)
            if version not in MIGRATABLE_VERSIONS or \
                    isinstance(version, bool):
                _format_version(meta, meta_path)
            if not meta.get('complete'):
                raise RuntimeError(
                    f'index {index_dir!r} is incomplete; build it again '
                    'with --overwrite (an interrupted format '
                    f'{version} build cannot be resumed)')
            files_path = osp.join(index_dir, FILES_FILE)
            if not meta.get('files_sha256'):
                meta['files_sha256'] = _sha256_file(files_path)
            emb, files = cls._open_data(index_dir, meta, True, version)
            meta['embeddings_sha256'] = _chunk_hashes(
                emb, files, osp.join(index_dir, EMBEDDINGS_FILE))
            atomic_write_text(_list_text(files), files_path)
            meta['files_sha256'] = _sha256_file(files_path)
            meta['format_version'] = FORMAT_VERSION
            _atomic_write_json(meta_path, meta)
        return cls.load(index_dir)

    @classmethod
    def build(cls,
              model: nn.Module,
              images: Union[str, Sequence[str]],
              index_dir: str,
              batch_size: int = 32,
              dtype: str = 'float32',
              progress: bool = True,
              overwrite: bool = False,
              num_workers: int = 0) -> 'ImageIndex':
        """Encode images into an index folder, or resume an interrupted run.

        Unreadable files (corrupt, truncated, not an image) are skipped
        with a warning and listed in ``meta['skipped']`` with the reason.

        Args:
            model (nn.Module): the retriever (see
                :func:`~rsitr_mm.apis.init_retriever`).
            images (str | Sequence[str]): a folder (searched recursively for
                jpg/jpeg/png/tif/tiff/bmp files) or a list of image files.
            index_dir (str): output folder. If it holds an incomplete index
                of the same model, the build continues from where it
                stopped; a complete one is returned as it is.
            batch_size (int): images per forward pass and per commit.
            dtype (str): ``'float32'`` or ``'float16'`` storage.
            progress (bool): show a progress bar.
            overwrite (bool): discard an existing index in ``index_dir``.
            num_workers (int): image-loading worker processes (0: read in
                this process); the order and the result are the same.

        Returns:
            ImageIndex: the loaded (memory-mapped) index.
        """
        if dtype not in ('float32', 'float16'):
            raise ValueError(
                f"dtype must be 'float32' or 'float16', got {dtype!r}")
        if batch_size < 1:
            raise ValueError(f'batch_size must be >= 1, got {batch_size}')
        if isinstance(images, str):
            root = osp.abspath(images)
            candidates = list_images(root)
        else:
            root = None
            candidates = [osp.abspath(p) for p in images]
        identity = model_identity(model)
        os.makedirs(index_dir, exist_ok=True)
        with build_lock(index_dir):
            return cls._build_locked(model, images, index_dir, batch_size,
                                     dtype, progress, overwrite, root,
                                     candidates, identity, num_workers)

    @classmethod
    def _build_locked(cls, model, images, index_dir, batch_size, dtype,
                      progress, overwrite, root, candidates,
                      identity, num_workers=0) -> 'ImageIndex':
        meta_path = osp.join(index_dir, META_FILE)
        emb_path = osp.join(index_dir, EMBEDDINGS_FILE)

        removed = remove_stale_temp_files(index_dir)
        if removed:
            warnings.warn(f'index {index_dir!r}: removed the temporary '
                          'files of an interrupted build: ' +
                          ', '.join(sorted(removed)))
        meta = None
        if osp.isfile(meta_path) and not overwrite:
            meta = _read_meta(index_dir)
            if meta.get('format_version', 1) != FORMAT_VERSION and \
                    not meta.get('complete'):
                raise ValueError(
                    f'{meta_path}: an interrupted build of index format '
                    f'{meta.get("format_version", 1)!r} cannot be resumed '
                    f'by this version (format {FORMAT_VERSION}); use '
                    'overwrite=True (--overwrite) to start again')
            check_identity(meta['identity'], identity,
                           f'index {index_dir!r}')
            if meta['dtype'] != dtype:
                raise ValueError(
                    f'index {index_dir!r} stores {meta["dtype"]}, asked for '
                    f'{dtype}; use overwrite=True or another folder')
            stored = _read_lines(osp.join(index_dir, CANDIDATES_FILE))
            if stored != candidates:
                warnings.warn(
                    f'index {index_dir!r}: the file list changed since the '
                    f'index was started ({len(stored)} -> {len(candidates)} '
                    'files); continuing with the original list. Use '
                    'overwrite=True to start again.')
            candidates = stored
            if meta.get('complete'):
                return cls.load(index_dir)

        if meta is None:
            if not candidates:
                raise ValueError(f'no image file found in {images!r}')
            for name in (FILES_FILE, EMBEDDINGS_FILE):
                if osp.exists(osp.join(index_dir, name)):
                    os.remove(osp.join(index_dir, name))
            atomic_write_text(_list_text(candidates),
                              osp.join(index_dir, CANDIDATES_FILE))
            meta = dict(
                format_version=FORMAT_VERSION,
                identity=identity,
                embed_dim=identity['embed_dim'],
                dtype=dtype,
                root=root,
                num_candidates=len(candidates),
                cursor=0,
                count=0,
                skipped={},
                complete=False)
            np.lib.format.open_memmap(
                emb_path, mode='w+', dtype=dtype,
                shape=(len(candidates), identity['embed_dim'])).flush()
            _atomic_write_json(meta_path, meta)

        cls._encode_remaining(model, meta, candidates, index_dir, batch_size,
                              progress, num_workers)
        cls._finalize(meta, candidates, index_dir)
        return cls.load(index_dir)

    @staticmethod
    def _encode_remaining(model: nn.Module, meta: dict,
                          candidates: List[str], index_dir: str,
                          batch_size: int, progress: bool,
                          num_workers: int = 0) -> None:
        from mmengine.utils import ProgressBar

        from .image_loading import load_image_batches
        root = meta['root']
        emb = np.load(osp.join(index_dir, EMBEDDINGS_FILE), mmap_mode='r+')
        batches = load_image_batches(
            [[osp.join(root, n) if root else n
              for n in candidates[s:s + batch_size]]
             for s in range(meta['cursor'], len(candidates), batch_size)],
            model_pipeline(model),
            num_workers=num_workers)
        meta_path = osp.join(index_dir, META_FILE)
        todo = len(candidates) - meta['cursor']
        bar = ProgressBar(todo) if progress and todo > 0 else None
        while meta['cursor'] < len(candidates):
            start = meta['cursor']
            names = candidates[start:start + batch_size]
            images, ok, failed = next(batches)
            if images:
                feats = encode_image_tensors(model, images).numpy()
                count = meta['count']
                _check_feats(feats.astype(emb.dtype), [names[i] for i in ok],
                             count)
                emb[count:count + len(images)] = feats.astype(emb.dtype)
                emb.flush()
            for i, reason in failed.items():
                meta['skipped'][names[i]] = reason
            if failed:
                warnings.warn(
                    f'skipped {len(failed)} unreadable file(s): ' +
                    '; '.join(f'{names[i]} ({r})'
                              for i, r in failed.items()))
            meta['count'] += len(images)
            meta['cursor'] += len(names)
            _atomic_write_json(meta_path, meta)
            if bar is not None:
                bar.update(len(names))
        if bar is not None:
            bar.file.write('\n')
        del emb

    @staticmethod
    def _finalize(meta: dict, candidates: List[str], index_dir: str) -> None:
        """Write ``files.txt``, trim the embeddings, mark complete."""
        skipped = meta['skipped']
        files = [c for c in candidates if c not in skipped]
        if len(files) != meta['count']:
            raise RuntimeError(
                f'index {index_dir!r} is inconsistent: {meta["count"]} rows '
                f'but {len(files)} indexed files')
        emb_path = osp.join(index_dir, EMBEDDINGS_FILE)
        emb = np.load(emb_path, mmap_mode='r')
        if emb.shape[0] != meta['count']:
            tmp = emb_path + '.tmp.npy'
            out = np.lib.format.open_memmap(
                tmp, mode='w+', dtype=emb.dtype,
                shape=(meta['count'], emb.shape[1]))
            step = 65536
            for s in range(0, meta['count'], step):
                e = min(s + step, meta['count'])
                out[s:e] = emb[s:e]
            out.flush()
            del out, emb
            os.replace(tmp, emb_path)
        else:
            del emb
        files_path = osp.join(index_dir, FILES_FILE)
        atomic_write_text(_list_text(files), files_path)
        meta['files_sha256'] = _sha256_file(files_path)
        meta['embeddings_sha256'] = _chunk_hashes(
            np.load(emb_path, mmap_mode='r'), files, emb_path)
        if skipped:
            warnings.warn(
                f'index {index_dir!r}: {len(skipped)} file(s) skipped: ' +
                ', '.join(sorted(skipped)))
        meta['complete'] = True
        _atomic_write_json(osp.join(index_dir, META_FILE), meta)
