# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Convert an OpenAI CLIP or OpenCLIP checkpoint into a ``transformers`` CLIP
directory that ``CLIPVisionBackbone`` / ``CLIPTextEncoder`` load offline.

Examples::

    # OpenAI TorchScript archive (QuickGELU is chosen automatically)
    python tools/model_converters/clip_to_hf.py ViT-B-32.pt \
        checkpoints/clip-vit-b32-hf --arch ViT-B-32

    # OpenCLIP state dict (RemoteCLIP / GeoRSCLIP, trained with exact GELU)
    python tools/model_converters/clip_to_hf.py RemoteCLIP-ViT-B-32.pt \
        checkpoints/remoteclip-vit-b32-hf

The architecture (width, layers, heads = width // 64, patch and image size,
context length, vocabulary and embedding size) is read from the tensor
shapes; ``--arch`` only checks it. ``--act`` sets the MLP activation:
``auto`` (default) means ``quick_gelu`` for OpenAI files (TorchScript
archives or state dicts with OpenAI's metadata entries) and ``gelu`` for
other state dicts; OpenCLIP ``*-quickgelu`` models need ``--act quick_gelu``.
The output is written to a temporary folder next to OUT_DIR and renamed at
the end.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

from rsitr_mm.models.utils.clip_convert import (  # noqa: E402
    KNOWN_ARCHS, convert_clip_checkpoint)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Convert OpenAI / OpenCLIP CLIP weights to transformers.')
    parser.add_argument(
        'src',
        help='input checkpoint (.pt / .pth / '
        '.bin / .safetensors / TorchScript archive)')
    parser.add_argument('out_dir', help='output transformers CLIP directory')
    parser.add_argument(
        '--arch',
        choices=sorted(KNOWN_ARCHS),
        default=None,
        help='expected architecture; fail if the shapes say otherwise')
    parser.add_argument(
        '--act',
        choices=['auto', 'quick_gelu', 'gelu'],
        default='auto',
        help='MLP activation (default: auto, see the module doc)')
    parser.add_argument(
        '--vision-heads',
        type=int,
        default=None,
        help='override the image tower head count')
    parser.add_argument(
        '--text-heads',
        type=int,
        default=None,
        help='override the text tower head count')
    parser.add_argument(
        '--bpe',
        default=None,
        help='CLIP BPE table (default: the one shipped '
        'inside the installed open_clip package)')
    parser.add_argument(
        '--trust-pickle',
        action='store_true',
        help='allow full unpickling of a trusted file that '
        'weights_only loading rejects')
    parser.add_argument(
        '--overwrite', action='store_true', help='replace an existing OUT_DIR')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    info = convert_clip_checkpoint(
        args.src,
        args.out_dir,
        arch=args.arch,
        act=args.act,
        vision_heads=args.vision_heads,
        text_heads=args.text_heads,
        bpe_path=args.bpe,
        trust_pickle=args.trust_pickle,
        overwrite=args.overwrite)
    print(f"Converted {args.src} ({info['name']}, act={info['hidden_act']}, "
          f"logit_scale={info['logit_scale']:.4f}) -> {args.out_dir}")


if __name__ == '__main__':
    main()
