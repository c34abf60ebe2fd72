# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Draw the salience and suppression maps of a model's BSD neck.

Usage::

    python tools/visualization/visualize_salience.py CONFIG CHECKPOINT \
        IMAGE --out OUT.png [--img-size S] [--device cpu]
    # an untrained model (to check a config): no CHECKPOINT
    python tools/visualization/visualize_salience.py CONFIG IMAGE \
        --random-init --out OUT.png

The model is built from CONFIG and CHECKPOINT is loaded strictly. The image
is read with the config's test pipeline (as ``tools/test.py`` reads it;
``--img-size`` resizes the result) and goes through the model's data
preprocessor, ``image_encoder`` and ``image_neck.forward_with_maps``; the
PNG shows the image and, for each direction of the neck, one row of
salience maps and one row of suppression maps (one column per scale), read
by one colour bar.

(``tools/visualize_salience.py IMAGE CONFIG [--checkpoint CKPT]``, the old
path and order, still works and forwards here.)
"""
import argparse
import os.path as osp
import sys
from typing import List, Optional

import rsitr_mm  # noqa: F401  (registers modules, applies stack fixes)
import mmcv
import torch

from rsitr_mm.visualization.neck_maps import neck_maps_of_image
from rsitr_mm.visualization.salience import draw_salience_maps
from rsitr_mm.visualization.tool_args import (add_image_args,
                                              load_model_and_image)

USAGE = 'CONFIG CHECKPOINT IMAGE'


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description='Visualise the salience/suppression maps of a BSD neck')
    add_image_args(parser)
    return parser


def compute_maps(model: torch.nn.Module, image_bgr, device: str = 'cpu'):
    """Run one ``(H, W, 3)`` BGR uint8 image; return ``(feat, maps)``."""
    return neck_maps_of_image(model, image_bgr, device, 'visualize_salience',
                              'a BidirectionalScaleDecoupling neck')


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    model, image, checkpoint = load_model_and_image(parser, args, USAGE)
    _, maps = compute_maps(model, image, args.device)
    fig = draw_salience_maps(
        mmcv.bgr2rgb(image),
        maps,
        out_file=args.out,
        title=osp.basename(args.image) +
        (' (random init)' if checkpoint is None else ''))
    panels = len(fig.axes) - 1  # minus the colour bar
    print(f'saved {args.out} ({panels} panels)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
