# Copyright (c) rsitr_mm contributors. All rights reserved.
import importlib.util
import os
import os.path as osp
import socket
from typing import Any, Callable

import pytest

os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
SHARED_DATA = osp.join(osp.dirname(REPO_ROOT), 'shared', 'data')


@pytest.fixture(scope='session')
def shared_data() -> str:
    """Path of the real RS test data (``../shared/data``); skip if absent."""
    if not osp.isdir(SHARED_DATA):
        pytest.skip('../shared/data is absent')
    return SHARED_DATA


@pytest.fixture(scope='session')
def repo_root() -> str:
    return REPO_ROOT


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture(scope='session')
def free_port() -> Callable[[], int]:
    """A function returning a free TCP port on 127.0.0.1, for the
    ``tcp://127.0.0.1:PORT`` rendezvous of the spawned gloo tests."""
    return _free_port


# The tiny TinyCNN + BiGRU demo model (configs/demo_tinycnn-bigru_synthetic.py
# shrunk further) that the CLI / runner tests train and test on synthetic data.
TINY_DEMO_CONFIG = """
_base_ = [r'{repo}/configs/demo_tinycnn-bigru_synthetic.py']
{imports}data_root = r'{data_root}'
model = dict(
    image_encoder=dict(base_channels={base_channels}, num_stages={num_stages}, \
out_indices=({out_index}, )),
    image_in_channels={image_channels},
    text_encoder=dict(ann_files=[data_root + '/dataset_synthetic.json'],
                      word_dim={word_dim}, hidden_dim={hidden_dim}),
    text_in_channels={hidden_dim},
    embed_dim={embed_dim})
"""
CUSTOM_IMPORTS = ("custom_imports = dict(imports=['rsitr_mm'], "
                  'allow_failed_imports=False)\n')


class TinyDemo:
    """Synthetic data set + config file for the tiny demo model."""

    @staticmethod
    def save_calibrated(model, image_paths, path: str) -> str:
        """Save ``model`` as a checkpoint at ``path`` after setting its
        BatchNorm statistics from ``image_paths`` (so that different images
        get clearly different embeddings from a random model)."""
        import torch

        from rsitr_mm.apis.model_loading import (build_image_loader,
                                                 model_pipeline)
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.reset_running_stats()
                m.momentum = None
        load = build_image_loader(model_pipeline(model))
        batch = torch.stack([load(p) for p in image_paths])
        model.train()
        with torch.no_grad():
            model.image_features(
                model.data_preprocessor(dict(inputs=batch), False)['images'])
        torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
        return path

    @staticmethod
    def dataset(root, *, num_images: int, split: tuple, seed: int) -> str:
        """Generate ``root/data`` (32 px images); return its path."""
        from rsitr_mm.datasets.synthetic import generate_synthetic_dataset
        data_root = osp.join(str(root), 'data')
        generate_synthetic_dataset(
            data_root, num_images=num_images, image_size=32, seed=seed,
            split=split, progress=False)
        return data_root

    @staticmethod
    def config(path, data_root: str, extra: str = '',
               custom_imports: bool = False, base_channels: int = 8,
               num_stages: int = 3, image_channels: int = 32,
               word_dim: int = 16, hidden_dim: int = 32,
               embed_dim: int = 32) -> str:
        """Write the tiny model config + ``extra`` lines to ``path``.

        Args:
            path: the config file to write.
            data_root: the synthetic data set (see :meth:`dataset`).
            extra: config lines appended after ``model`` (dataloaders, ...).
            custom_imports: add ``custom_imports = dict(imports=['rsitr_mm'])``
                (for runs whose working directory is outside the repository).
            base_channels, num_stages: TinyCNN's width and depth (its last
                stage is the output).
            image_channels: TinyCNN's output channels.
            word_dim, hidden_dim: the BiGRU's word and output sizes.
            embed_dim: the joint embedding size.

        Returns:
            str: ``path``.
        """
        text = TINY_DEMO_CONFIG.format(
            repo=REPO_ROOT, data_root=data_root,
            imports=CUSTOM_IMPORTS if custom_imports else '',
            base_channels=base_channels, num_stages=num_stages,
            out_index=num_stages - 1, image_channels=image_channels,
            word_dim=word_dim, hidden_dim=hidden_dim, embed_dim=embed_dim)
        with open(str(path), 'w') as f:
            f.write(text + extra)
        return str(path)


@pytest.fixture(scope='session')
def tiny_demo() -> type:
    """:class:`TinyDemo`: writes the tiny demo data set and configs."""
    return TinyDemo


@pytest.fixture(scope='session')
def load_tool(repo_root: str) -> Callable[..., Any]:
    """Import a script under ``tools/`` as a module (its ``main`` then runs
    in the test's process): ``load_tool('benchmarks', 'recall_speed')``."""

    def load(*parts: str):
        path = osp.join(repo_root, 'tools', *parts[:-1], parts[-1] + '.py')
        spec = importlib.util.spec_from_file_location(
            '_tool_' + '_'.join(parts), path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod

    return load
