# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Draw the attention maps of a model's DAPN neck over an image.

Usage::

    python tools/visualization/visualize_attention.py CONFIG CHECKPOINT \
        IMAGE --out OUT.png [--img-size S] [--alpha 0.5] [--device cpu]
    # an untrained model (to check a config): no CHECKPOINT
    python tools/visualization/visualize_attention.py CONFIG IMAGE \
        --random-init --out OUT.png

The model is built from CONFIG (``mmengine.Config`` + mmpretrain's
``MODELS``) and CHECKPOINT is loaded strictly. The image is read with the
config's test pipeline (as ``tools/test.py`` reads it; ``--img-size`` resizes
the result) and goes through the model's data preprocessor,
``image_encoder`` and ``image_neck.forward_with_maps``. The PNG shows the
image, DAPN's spatial attention and, for each region scale, the weight of each
grid cell in that scale's region feature (with the scale's dynamic weight),
each map min-max normalised and read by one colour bar.

(``tools/visualize_attention.py IMAGE CONFIG [--checkpoint CKPT]``, the old
path and order, still works and forwards here.)
"""
import argparse
import os.path as osp
import sys
from typing import List, Optional

import rsitr_mm  # noqa: F401  (registers modules, applies stack fixes)
import mmcv
import torch

from rsitr_mm.visualization.attention import draw_attention_maps
from rsitr_mm.visualization.neck_maps import neck_maps_of_image
from rsitr_mm.visualization.tool_args import (add_image_args,
                                              load_model_and_image)

USAGE = 'CONFIG CHECKPOINT IMAGE'


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description='Visualise the attention maps of a DAPN neck')
    add_image_args(
        parser, 'keep; it must then be a multiple of the patch size')
    parser.add_argument('--alpha', type=float, default=0.5,
                        help='heat-map opacity')
    return parser


def compute_attention(model: torch.nn.Module, image_bgr, device: str = 'cpu'):
    """Run one ``(H, W, 3)`` BGR uint8 image; return ``(feat, maps)``."""
    return neck_maps_of_image(model, image_bgr, device, 'visualize_attention',
                              'a DualAttentionPerception neck')


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    model, image, checkpoint = load_model_and_image(parser, args, USAGE)
    _, maps = compute_attention(model, image, args.device)
    draw_attention_maps(
        mmcv.bgr2rgb(image),
        maps,
        out_file=args.out,
        alpha=args.alpha,
        title=osp.basename(args.image) +
        (' (random init)' if checkpoint is None else ''))
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
