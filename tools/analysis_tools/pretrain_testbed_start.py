# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Pretrain the testbed's CLIP-architecture start on the disjoint domain.

Trains a small ``transformers.CLIPModel`` (ViT 128 px / patch 16 -> 8x8
grid; image and text towers of width 128, 4 layers; the real CLIP BPE
tokenizer) with the symmetric InfoNCE loss on the testbed's PRETRAINING
domain (toy shapes on patterned floors, no word or object shared with the
aerial target domain), once, and saves it as a transformers CLIP folder
(config, safetensors weights, tokenizer files): the layout the CLIP configs
load with ``pretrained=``. The folder is cached next to the data, keyed by
the pretraining parameters; a complete folder is reused.

    python tools/analysis_tools/pretrain_testbed_start.py
    # -> data/testbed/v1-<hash>/clip_start-<hash>/
"""
import argparse
import hashlib
import json
import math
import os
import os.path as osp
import shutil
import sys
import time
from typing import Optional, Sequence

import numpy as np

#: Tower sizes of the pretrained start (see the module docstring).
CLIP_ARCH = dict(
    image_size=128,
    patch_size=16,
    width=128,
    layers=4,
    heads=4,
    projection_dim=128,
    context_length=77)
#: Caption length used in pretraining and by the testbed configs.
MAX_TOKENS = 32
#: CLIP's pixel normalisation (the configs' data_preprocessor uses it).
MEAN = (122.770938, 116.7460125, 104.09373615)
STD = (68.5005327, 66.6321579, 70.32316305)


def pretrain_params(steps: int, batch_size: int, lr: float, seed: int) -> dict:
    """The cache key of a pretrained start."""
    return dict(
        arch=CLIP_ARCH,
        max_tokens=MAX_TOKENS,
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        version=1)


def start_dir(data_dir: str, params: dict) -> str:
    """``data_dir/clip_start-<hash of params>``."""
    key = hashlib.sha1(json.dumps(params, sort_keys=True).encode())
    return osp.join(data_dir, f'clip_start-{key.hexdigest()[:10]}')


def _load_domain(ann_file: str):
    from PIL import Image
    with open(ann_file, encoding='utf-8') as f:
        data = json.load(f)
    img_dir = osp.join(osp.dirname(ann_file), 'images')
    images = np.stack([
        np.asarray(
            Image.open(osp.join(img_dir, im['filename'])).convert('RGB'))
        for im in data['images']
    ])
    captions = [[s['raw'] for s in im['sentences']] for im in data['images']]
    return images, captions


def pretrain(data_dir: str,
             steps: int = 600,
             batch_size: int = 64,
             lr: float = 5e-4,
             seed: int = 0,
             force: bool = False,
             log_every: int = 50) -> str:
    """Pretrain (or reuse) the CLIP start of a testbed folder.

    Args:
        data_dir (str): A testbed cache folder (with ``pretrain/``).
        steps (int): Optimisation steps. Defaults to 600.
        batch_size (int): Image-caption pairs per step (one random caption
            per image). Defaults to 64.
        lr (float): Peak AdamW learning rate (5% linear warm-up, cosine
            decay). Defaults to 5e-4.
        seed (int): Seed of the initial weights and the batches.
        force (bool): Retrain even if a complete folder exists.
        log_every (int): Print the loss every this many steps.

    Returns:
        str: The CLIP folder.
    """
    import torch
    import torch.nn.functional as F
    from transformers import CLIPModel, CLIPTokenizer

    from rsitr_mm.models.utils.hf_utils import clip_features
    from rsitr_mm.models.utils.tiny_clip import (_tokenizer_files,
                                                 tiny_clip_config)

    params = pretrain_params(steps, batch_size, lr, seed)
    out = start_dir(data_dir, params)
    done = osp.join(out, 'pretrain_meta.json')
    if not force and osp.isfile(done):
        return out
    ann = osp.join(data_dir, 'pretrain', 'dataset_synthetic.json')
    if not osp.isfile(ann):
        raise FileNotFoundError(
            f'{ann} not found: generate the testbed first '
            '(tools/dataset_converters/generate_synthetic.py --profile '
            'testbed)')
    images, captions = _load_domain(ann)
    tok_dir = _tokenizer_files()
    tokenizer = CLIPTokenizer.from_pretrained(tok_dir)
    flat = [c for caps in captions for c in caps]
    enc = tokenizer(
        flat,
        padding='max_length',
        truncation=True,
        max_length=MAX_TOKENS,
        return_tensors='pt')
    ids = enc['input_ids'].view(len(captions), -1, MAX_TOKENS)
    mask = enc['attention_mask'].view(len(captions), -1, MAX_TOKENS)
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)

    torch.manual_seed(seed)
    model = CLIPModel(tiny_clip_config(**CLIP_ARCH))
    model.train()
    opt = torch.optim.AdamW(
        model.parameters(), lr=lr, weight_decay=0.05, betas=(0.9, 0.98))
    warm = max(1, steps // 20)

    def lr_at(step):
        if step < warm:
            return lr * (step + 1) / warm
        t = (step - warm) / max(1, steps - warm)
        return lr * 0.5 * (1 + math.cos(math.pi * t))

    gen = np.random.default_rng(seed)
    n = len(images)
    start = time.time()
    for step in range(steps):
        idx = gen.choice(n, size=min(batch_size, n), replace=False)
        cap = gen.integers(0, ids.size(1), size=len(idx))
        px = torch.from_numpy(images[idx]).permute(0, 3, 1, 2).float()
        px = (px - mean) / std
        t_ids = ids[idx, cap]
        t_mask = mask[idx, cap]
        for g in opt.param_groups:
            g['lr'] = lr_at(step)
        img = F.normalize(
            clip_features(model.get_image_features(pixel_values=px)), dim=-1)
        txt = F.normalize(
            clip_features(model.get_text_features(input_ids=t_ids,
                                                  attention_mask=t_mask)),
            dim=-1)
        logits = model.logit_scale.exp().clamp(max=100) * img @ txt.t()
        target = torch.arange(len(idx))
        # captions of the same image in a batch cannot occur (one per image)
        loss = 0.5 * (
            F.cross_entropy(logits, target) +
            F.cross_entropy(logits.t(), target))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if log_every and (step % log_every == 0 or step == steps - 1):
            with torch.no_grad():
                acc = (logits.argmax(1) == target).float().mean().item()
            print(
                f'step {step + 1}/{steps} loss {loss.item():.3f} '
                f'batch i2t acc {acc:.2f} ({time.time() - start:.0f} s)',
                flush=True)
    tmp = out + '.tmp'
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    model.save_pretrained(tmp, safe_serialization=True)
    for name in os.listdir(tok_dir):
        shutil.copy(osp.join(tok_dir, name), osp.join(tmp, name))
    with open(osp.join(tmp, 'pretrain_meta.json'), 'w', encoding='utf-8') as f:
        json.dump(
            dict(
                params,
                seconds=round(time.time() - start, 1),
                final_loss=round(float(loss.item()), 4)),
            f,
            indent=1)
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return out


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--data-root',
        default='data/testbed',
        help='parent folder of the testbed caches (generated if missing)')
    parser.add_argument('--data-seed', type=int, default=0)
    parser.add_argument('--steps', type=int, default=600)
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--lr', type=float, default=5e-4)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--force', action='store_true')
    parser.add_argument('--log-every', type=int, default=50)
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    from rsitr_mm.datasets.synthetic import generate_testbed
    data_dir = generate_testbed(
        args.data_root,
        num_workers=min(8,
                        os.cpu_count() or 1),
        seed=args.data_seed)
    out = pretrain(data_dir, args.steps, args.batch_size, args.lr, args.seed,
                   args.force, args.log_every)
    print(f'pretrained start: {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
