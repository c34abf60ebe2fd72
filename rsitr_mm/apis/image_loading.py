# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Read image files in data loader worker processes, batch by batch.

Building an image index decodes every file; in the main process alone
that leaves the model waiting. :func:`load_image_batches` reads the batches
with a ``torch.utils.data.DataLoader`` (``num_workers`` processes, batches
prefetched, order kept) and yields for each exactly what
:func:`rsitr_mm.apis.model_loading.load_images` returns for it, so a
caller swaps one for the other without other changes.
"""
from typing import Dict, Iterator, List, Sequence, Tuple

import torch
from torch.utils.data import DataLoader, Dataset

Batch = Tuple[List[torch.Tensor], List[int], Dict[int, str]]


class _PathBatches(Dataset):
    """Item ``i`` = :func:`load_images` of the ``i``-th batch of paths."""

    def __init__(self, batches: Sequence[Sequence[str]],
                 pipeline: Sequence[dict]) -> None:
        self.batches = [list(b) for b in batches]
        self.pipeline = list(pipeline)
        self._loader = None  # built in each worker on first use

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> Batch:
        from .model_loading import build_image_loader, load_images
        if self._loader is None:
            self._loader = build_image_loader(self.pipeline)
        return load_images(self.batches[i], self._loader)


def _as_is(item):
    return item


def load_image_batches(batches: Sequence[Sequence[str]],
                       pipeline: Sequence[dict],
                       num_workers: int = 0,
                       prefetch_factor: int = 2) -> Iterator[Batch]:
    """Load batches of image files, in order, with worker processes.

    Args:
        batches (Sequence[Sequence[str]]): the paths of each batch.
        pipeline (Sequence[dict]): the model's test pipeline (see
            :func:`rsitr_mm.apis.model_loading.model_pipeline`).
        num_workers (int): loader processes; 0 reads in this process.
        prefetch_factor (int): batches loaded ahead per worker.

    Yields:
        tuple: per batch, ``(images, ok, failed)`` as
        :func:`rsitr_mm.apis.model_loading.load_images` returns them:
        the ``(3, H, W)`` uint8 tensors, their positions in the batch and
        ``{position: reason}`` of the unreadable files.
    """
    if num_workers < 0:
        raise ValueError(f'num_workers must be >= 0, got {num_workers}')
    dataset = _PathBatches(batches, pipeline)
    kwargs = dict(prefetch_factor=prefetch_factor) if num_workers else {}
    loader = DataLoader(dataset, batch_size=None, shuffle=False,
                        num_workers=num_workers, collate_fn=_as_is,
                        **kwargs)
    yield from loader
