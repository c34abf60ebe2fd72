# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Write a CLIP folder with random weights: day-one runs without downloads.

The folder holds a full-size ``transformers`` CLIP of a real architecture
(parameter count and FLOPs of the pretrained one) with random weights, and
the real CLIP tokenizer files (shipped by ``open_clip_torch``), so every CLIP
config runs offline: smoke tests, speed and memory measurements, a
pipeline check before the weights arrive. Its retrieval quality is nil.

Example::

    python tools/model_converters/random_clip.py ViT-B-32 \
        checkpoints/random-clip-vit-b32
    python tools/train.py configs/osdpm_rsicd.py --cfg-options \
        model.image_encoder.pretrained=checkpoints/random-clip-vit-b32 \
        model.text_encoder.pretrained=checkpoints/random-clip-vit-b32

(The preflight checklist of ``tools/train.py`` / ``tools/test.py`` names
every key of a config that needs such a folder.)
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

from rsitr_mm.models.utils.clip_convert import KNOWN_ARCHS  # noqa: E402
from rsitr_mm.models.utils.tiny_clip import make_random_clip_dir  # noqa


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Write a randomly initialised CLIP folder (weights, '
        'config, tokenizer files).')
    parser.add_argument('arch', choices=sorted(KNOWN_ARCHS),
                        help='CLIP architecture')
    parser.add_argument('out_dir', help='folder to write')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the random weights')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    path = make_random_clip_dir(args.out_dir, args.arch, seed=args.seed)
    print(f'random {args.arch} CLIP written to {path} (random weights: for '
          'smoke tests and speed, not for retrieval)')


if __name__ == '__main__':
    main()
