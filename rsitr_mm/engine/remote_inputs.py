# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Inputs a config downloads: hub ids and checkpoint URLs, checked offline.

A Hugging Face hub id (``pretrained='openai/clip-vit-base-patch32'``) or a
checkpoint URL (SSJDN's ImageNet ResNet-50 ``init_cfg.checkpoint``) is
fetched while the model is built. Without network access that fails late:
after the datasets were read, after a minute and a half of retries, at the
first of several such inputs. :func:`remote_checks` lists every one of them
for the preflight checklist, each with the config key that names it, when
it cannot be fetched now:

* a hub id when the machine is offline for the hub (``HF_HUB_OFFLINE`` or
  ``TRANSFORMERS_OFFLINE`` set, or ``huggingface.co`` unreachable) and the
  id's ``config.json`` is not in the local hub cache;
* an ``http(s)://`` URL when its host is unreachable and the file is not in
  torch's hub cache (``<torch hub dir>/checkpoints/<file name>``, where
  mmengine's loader looks first).

Reachability is one TCP connection per host with a 3 s timeout, tried only
when something is not cached. Other URL schemes (``open-mmlab://``...) are
not checked.
"""
import functools
import os
import os.path as osp
import socket
import threading
from typing import TYPE_CHECKING, Any, List, Optional
from urllib.parse import urlparse

if TYPE_CHECKING:  # preflight imports this module
    from .preflight import PathCheck

HUB_HOST = 'huggingface.co'


def hub_offline_by_env() -> bool:
    """Whether ``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE`` is set."""
    return any(
        os.environ.get(name, '0').strip().lower() not in ('', '0', 'false')
        for name in ('HF_HUB_OFFLINE', 'TRANSFORMERS_OFFLINE'))


@functools.lru_cache(maxsize=None)
def reachable(host: str, port: int = 443, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to ``host:port`` opens within ``timeout``.

    The name lookup runs in a daemon thread, so a resolver that hangs
    costs ``timeout`` too, not its own retries.
    """
    result: List[bool] = []

    def connect() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    worker = threading.Thread(target=connect, daemon=True)
    worker.start()
    worker.join(timeout)
    return bool(result and result[0])


def hub_cached(hub_id: str) -> bool:
    """Whether the hub cache holds ``hub_id``'s ``config.json``."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - transformers depends on it
        return False
    found = try_to_load_from_cache(hub_id, 'config.json')
    return isinstance(found, str) and osp.isfile(found)


def url_cache_path(url: str) -> str:
    """Where mmengine's URL loader keeps ``url``'s file."""
    import torch.hub
    name = osp.basename(urlparse(url).path)
    return osp.join(torch.hub.get_dir(), 'checkpoints', name)


def hub_available(hub_id: str) -> bool:
    """Cached, or the hub can be reached."""
    if hub_cached(hub_id):
        return True
    return not hub_offline_by_env() and reachable(HUB_HOST)


def url_available(url: str) -> bool:
    """Cached, or the URL's host can be reached."""
    if osp.isfile(url_cache_path(url)):
        return True
    host = urlparse(url).hostname
    return bool(host) and reachable(host)


def is_http_url(value: Any) -> bool:
    """Whether ``value`` is an ``http(s)://`` URL."""
    return isinstance(value, str) and value.startswith(('http://',
                                                        'https://'))


def hub_hint(hub_id: str, key: str, family: str) -> str:
    """How to get a hub id's files without the hub, and the no-weights
    way."""
    from ..models.utils.hf_utils import how_to_provide
    hint = how_to_provide(hub_id, key, family)
    if family == 'clip':
        hint += (' Without any weights (smoke tests): `python '
                 'tools/model_converters/random_clip.py ViT-B-32 '
                 f'checkpoints/random-clip`, then set {key}='
                 'checkpoints/random-clip.')
    return hint


def url_hint(url: str, key: str, init_key: Optional[str] = None) -> str:
    """How to get a URL's file without the network."""
    hint = (f'download {url} on a machine with internet and set {key}=PATH, '
            f'or copy it to {url_cache_path(url)}')
    if init_key:
        hint += f'; or set {init_key}=None to start from scratch'
    return hint + '.'


def remote_checks(cfg: Any) -> List['PathCheck']:
    """Hub ids and URLs of ``cfg`` that cannot be fetched now.

    Args:
        cfg (Config | dict): The merged config.

    Returns:
        list[PathCheck]: one per input (kind ``'hub'`` or ``'url'``), in
        config order; empty when everything is cached or reachable.
    """
    from ..models.utils.hf_utils import is_hub_id
    from .preflight import PathCheck
    checks: List[PathCheck] = []

    def visit(node: Any, key: str) -> None:
        if isinstance(node, (list, tuple)):
            for i, item in enumerate(node):
                visit(item, f'{key}.{i}')
            return
        if not hasattr(node, 'items'):
            return
        family = 'clip' if 'CLIP' in str(node.get('type', '')) else 'bert'
        for name, value in node.items():
            sub = f'{key}.{name}'
            if (name in ('pretrained', 'tokenizer') and isinstance(value, str)
                    and is_hub_id(value) and not hub_available(value)):
                checks.append(PathCheck(sub, value, 'hub',
                                        hub_hint(value, sub, family)))
            elif name == 'init_cfg' and hasattr(value, 'items'):
                url = value.get('checkpoint', None)
                if is_http_url(url) and not url_available(url):
                    checks.append(PathCheck(
                        f'{sub}.checkpoint', url, 'url',
                        url_hint(url, f'{sub}.checkpoint', sub)))
            else:
                visit(value, sub)

    if cfg.get('model', None) is not None:
        visit(cfg['model'], 'model')
    load_from = cfg.get('load_from', None)
    if is_http_url(load_from) and not url_available(load_from):
        checks.append(PathCheck('load_from', load_from, 'url',
                                url_hint(load_from, 'load_from')))
    return checks
