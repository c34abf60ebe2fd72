# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Run one image through a retriever's image branch and collect the maps."""
import os.path as osp
from typing import Dict, Optional, Tuple

import numpy as np
import torch


@torch.no_grad()
def neck_maps_of_image(model: torch.nn.Module,
                       image_bgr: np.ndarray,
                       device: str = 'cpu',
                       who: str = 'visualize',
                       neck_hint: str = 'a neck with forward_with_maps()'
                       ) -> Tuple[torch.Tensor, Dict]:
    """Feature and maps of the image neck for one image.

    The image goes through the model's own data preprocessor, image encoder
    and ``image_neck.forward_with_maps`` (BSD salience/suppression maps,
    DAPN attention maps).

    Args:
        model (nn.Module): a retriever with ``data_preprocessor``,
            ``image_encoder`` and ``image_neck``.
        image_bgr (np.ndarray): (H, W, 3) uint8 BGR image (mmcv.imread).
        device (str): where the model is.
        who (str): name used in error messages (the calling tool).
        neck_hint (str): which neck the caller expects, for the error.

    Returns:
        tuple: ``(feat (1, C), maps)`` as returned by the neck.
    """
    for name in ('image_encoder', 'image_neck'):
        if getattr(model, name, None) is None:
            raise ValueError(f'{who}: the model has no `{name}`; the config '
                             'must define one.')
    neck = model.image_neck
    if not hasattr(neck, 'forward_with_maps'):
        raise ValueError(
            f'{who}: model.image_neck ({type(neck).__name__}) has no '
            f'forward_with_maps(); use {neck_hint}.')
    inputs = torch.from_numpy(image_bgr.copy()).permute(2, 0, 1)[None]
    data = model.data_preprocessor(dict(inputs=inputs.to(device)), False)
    feats = model.image_encoder(data['images'])
    if isinstance(feats, torch.Tensor):
        feats = (feats, )
    return neck.forward_with_maps(feats)


def load_test_image(model: torch.nn.Module,
                    path: str,
                    img_size: Optional[int] = None) -> np.ndarray:
    """Read one image as the model sees it at test time.

    The image goes through the model's test pipeline
    (``test_dataloader.dataset.pipeline`` without ``PackInputs``, see
    :func:`rsitr_mm.apis.model_loading.get_test_pipeline`; load only when
    the config has no test dataloader), whatever split the caller draws.

    Args:
        model (nn.Module): a retriever from
            :func:`rsitr_mm.apis.init_retriever`.
        path (str): image file.
        img_size (int, optional): resize the pipeline's output to this
            square size (e.g. for a config without a test pipeline).

    Returns:
        np.ndarray: (H, W, 3) uint8 image in the pipeline's channel order
        (BGR for ``LoadImageFromFile``), ready for
        :func:`neck_maps_of_image`.
    """
    import mmcv

    from rsitr_mm.apis.model_loading import build_image_loader, model_pipeline
    if not osp.isfile(path):
        raise FileNotFoundError(f'image {path!r} does not exist')
    image = build_image_loader(model_pipeline(model))(path)
    image = np.ascontiguousarray(image.permute(1, 2, 0).numpy())
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    if img_size:
        image = mmcv.imresize(image, (img_size, img_size))
    return image
