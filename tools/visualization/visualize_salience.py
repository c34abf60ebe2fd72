# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Draw the salience and suppression maps of a model's BSD neck.

Usage::

    python tools/visualize_salience.py IMAGE CONFIG [--checkpoint CKPT] \
        --out OUT.png [--img-size 256] [--device cpu]

The model is built from CONFIG, the image goes through the model's data
preprocessor, ``image_encoder`` and ``image_neck.forward_with_maps``; the PNG
shows the image and, for each direction of the neck, one row of salience
maps and one row of suppression maps (one column per scale).
"""
import argparse
import os.path as osp

import rsitr_mm  # noqa: F401  (registers modules, applies stack fixes)
from rsitr_mm.apis import init_retriever
from rsitr_mm.visualization.neck_maps import neck_maps_of_image
import mmcv
import torch
from mmengine.config import DictAction

from rsitr_mm.visualization.salience import draw_salience_maps


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Visualise the salience/suppression maps of a BSD neck')
    parser.add_argument('image', help='image file')
    parser.add_argument('config', help='model config file')
    parser.add_argument('--checkpoint', help='checkpoint to load')
    parser.add_argument('--out', required=True, help='output PNG path')
    parser.add_argument(
        '--img-size',
        type=int,
        default=None,
        help='resize the image to this square size first (default: keep)')
    parser.add_argument('--device', default='cpu', help='torch device')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings')
    return parser.parse_args()


def build_model(config: str, checkpoint: str = None, device: str = 'cpu',
                cfg_options: dict = None) -> torch.nn.Module:
    """Build the retriever of ``config`` and load ``checkpoint`` if given."""
    return init_retriever(config, checkpoint, device, cfg_options)


def compute_maps(model: torch.nn.Module, image_bgr, device: str = 'cpu'):
    """Run one ``(H, W, 3)`` BGR uint8 image; return ``(feat, maps)``."""
    return neck_maps_of_image(model, image_bgr, device, 'visualize_salience',
                              'a BidirectionalScaleDecoupling neck')


def main() -> None:
    args = parse_args()
    if not osp.isfile(args.image):
        raise FileNotFoundError(f'visualize_salience: image {args.image} '
                                'does not exist.')
    model = build_model(args.config, args.checkpoint, args.device,
                        args.cfg_options)
    image = mmcv.imread(args.image)  # BGR, as LoadImageFromFile
    if args.img_size:
        image = mmcv.imresize(image, (args.img_size, args.img_size))
    _, maps = compute_maps(model, image, args.device)
    fig = draw_salience_maps(
        mmcv.bgr2rgb(image),
        maps,
        out_file=args.out,
        title=osp.basename(args.image))
    rows = len(fig.axes)
    print(f'saved {args.out} ({rows} panels)')


if __name__ == '__main__':
    main()
