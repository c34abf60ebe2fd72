# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Draw the attention maps of a model's DAPN neck over an image.

Usage::

    python tools/visualize_attention.py IMAGE CONFIG [--checkpoint CKPT] \
        --out OUT.png [--img-size 224] [--device cpu] [--alpha 0.5]

The model is built from CONFIG (``mmengine.Config`` + mmpretrain's
``MODELS``); the image goes through the model's data preprocessor,
``image_encoder`` and ``image_neck.forward_with_maps``. The PNG shows the
image, DAPN's spatial attention and, for each region scale, the weight of each
grid cell in that scale's region feature (with the scale's dynamic weight).
"""
import argparse
import os.path as osp
import sys
from typing import List, Optional

import rsitr_mm  # noqa: F401  (registers modules, applies stack fixes)
from rsitr_mm.apis import init_retriever
from rsitr_mm.visualization.neck_maps import neck_maps_of_image
import mmcv
import torch
from mmengine.config import DictAction

from rsitr_mm.visualization.attention import draw_attention_maps


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Visualise the attention maps of a DAPN neck')
    parser.add_argument('image', help='image file')
    parser.add_argument('config', help='model config file')
    parser.add_argument('--checkpoint', help='checkpoint to load')
    parser.add_argument('--out', required=True, help='output PNG path')
    parser.add_argument(
        '--img-size',
        type=int,
        default=None,
        help='resize the image to this square size first (default: keep; '
        'it must then be a multiple of the patch size)')
    parser.add_argument('--alpha', type=float, default=0.5,
                        help='heat-map opacity')
    parser.add_argument('--device', default='cpu', help='torch device')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings')
    return parser.parse_args(argv)


def build_model(config: str,
                checkpoint: Optional[str] = None,
                device: str = 'cpu',
                cfg_options: Optional[dict] = None) -> torch.nn.Module:
    """Build the retriever of ``config`` and load ``checkpoint`` if given."""
    return init_retriever(config, checkpoint, device, cfg_options)


def compute_attention(model: torch.nn.Module, image_bgr, device: str = 'cpu'):
    """Run one ``(H, W, 3)`` BGR uint8 image; return ``(feat, maps)``."""
    return neck_maps_of_image(model, image_bgr, device, 'visualize_attention',
                              'a DualAttentionPerception neck')


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if not osp.isfile(args.image):
        raise FileNotFoundError(f'visualize_attention: image {args.image} '
                                'does not exist.')
    model = build_model(args.config, args.checkpoint, args.device,
                        args.cfg_options)
    image = mmcv.imread(args.image)  # BGR, as LoadImageFromFile
    if args.img_size:
        image = mmcv.imresize(image, (args.img_size, args.img_size))
    _, maps = compute_attention(model, image, args.device)
    draw_attention_maps(
        mmcv.bgr2rgb(image),
        maps,
        out_file=args.out,
        alpha=args.alpha,
        title=osp.basename(args.image))
    if maps.get('scale_weights') is not None:
        weights = ', '.join(
            f'{s}x{s}: {w:.3f}' for s, w in zip(
                sorted(maps['regions']), maps['scale_weights'][0].tolist()))
        print(f'saved {args.out}; scale weights {weights}')
    else:
        print(f'saved {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
