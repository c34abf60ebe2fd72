# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Cost of the integrity check when an index is opened.

``ImageIndex.load`` reads every embedding row once (per-block sha256, no
NaN/inf, no all-zero row). This times that pass (``_chunk_hashes``) over a
memory-mapped ``(N, 512)`` gallery, interleaved with the bare pass it
cannot avoid (reading the same rows and summing them), in one process,
with the file in the page cache; prints the best of ``--repeat`` runs.

Usage::

    python tools/benchmarks/index_open.py [--rows 200000] [--dtype float16]
"""
import argparse
import os.path as osp
import tempfile
import time

import numpy as np

from rsitr_mm.apis.image_index import HASH_ROWS, _chunk_hashes


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--rows', type=int, default=200_000)
    p.add_argument('--dim', type=int, default=512)
    p.add_argument('--dtype', default='float32')
    p.add_argument('--repeat', type=int, default=3)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = osp.join(tmp, 'embeddings.npy')
        out = np.lib.format.open_memmap(path, mode='w+', dtype=args.dtype,
                                        shape=(args.rows, args.dim))
        rng = np.random.default_rng(0)
        for s in range(0, args.rows, HASH_ROWS):
            block = rng.standard_normal((min(HASH_ROWS, args.rows - s),
                                         args.dim)).astype(np.float32)
            out[s:s + len(block)] = block / np.linalg.norm(
                block, axis=1, keepdims=True)
        out.flush()
        del out
        emb = np.load(path, mmap_mode='r')
        files = [f'{i}.png' for i in range(args.rows)]
        check, bare = [], []
        for _ in range(args.repeat):
            t = time.perf_counter()
            _chunk_hashes(emb, files, path)
            check.append(time.perf_counter() - t)
            t = time.perf_counter()
            for s in range(0, args.rows, HASH_ROWS):
                float(np.asarray(emb[s:s + HASH_ROWS], np.float32).sum())
            bare.append(time.perf_counter() - t)
        size = args.rows * args.dim * np.dtype(args.dtype).itemsize / 2**20
        print(f'| {args.rows:,} x {args.dim} {args.dtype} ({size:.0f} MiB) | '
              f'{min(check):.2f} s | {min(bare):.2f} s | '
              f'{min(check) / min(bare):.2f}x | '
              f'{size / min(check):.0f} MiB/s |')


if __name__ == '__main__':
    main()
