# Copyright (c) rsitr_mm contributors. All rights reserved.
"""The one-command demo (``make demo``).

1. Generates aerial-like scenes with captions (if not there yet).
2. Trains a small CNN + BiGRU dual encoder from scratch on the CPU.
3. Evaluates it on the held-out split and prints the recall table next to
   the chance level.
4. Runs one text query and one image query and writes a PNG of the result.
"""
import argparse
import os.path as osp
import time

import rsitr_mm  # noqa: F401  (registers modules, applies stack fixes)
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from rsitr_mm.datasets.synthetic import generate_synthetic_dataset
from rsitr_mm.engine.launch import (describe_cpu_processes,
                                    format_retrieval_table,
                                    set_dataloader_defaults)
from rsitr_mm.engine.runners import encode_loader
from rsitr_mm.evaluation import chance_recall
from rsitr_mm.utils.threads import (add_threads_arg, loader_workers,
                                   setup_threads)

DEFAULT_CONFIG = osp.join(
    osp.dirname(osp.dirname(osp.abspath(__file__))), 'configs',
    'demo_tinycnn-bigru_synthetic.py')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='rsitr_mm demo')
    parser.add_argument('--config', default=DEFAULT_CONFIG)
    parser.add_argument('--data-root', default='data/synthetic_demo')
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--num-images', type=int, default=2000)
    parser.add_argument('--image-size', type=int, default=64)
    parser.add_argument('--epochs', type=int, default=None)
    parser.add_argument('--seed', type=int, default=0)
    add_threads_arg(parser)
    return parser.parse_args()


def write_example(model, dataset, image_feat, text_feat, out_file) -> str:
    """Query by the first test caption; print and draw the top-5 images
    (the captioned image framed green, or drawn with its rank when it is
    not among them)."""
    from types import SimpleNamespace

    from rsitr_mm.visualization import draw_image_results

    query_id = 0
    gold = query_id // 5
    captions = [
        c for i in range(len(dataset))
        for c in dataset.get_data_info(i)['text']
    ]
    query = captions[query_id]
    scores = (image_feat @ text_feat[query_id]).cpu()
    top = torch.topk(scores, k=5)
    gold_rank = int((scores > scores[gold]).sum())
    lines = [f'Text query: "{query}"']
    paths = []
    for rank, (score, idx) in enumerate(zip(top.values, top.indices), 1):
        info = dataset.get_data_info(int(idx))
        paths.append(info['img_path'])
        lines.append(f'  {rank}. {info["filename"]:<24} score {score:.3f}'
                     f'{"  <- the captioned image" if idx == gold else ""}')
    gold_info = dataset.get_data_info(gold)
    lines.append(f'  (the captioned image, {gold_info["filename"]}, '
                 f'ranks #{gold_rank + 1} of {len(scores)})')
    draw_image_results(
        SimpleNamespace(queries=[query], items=[paths],
                        scores=top.values.numpy()[None]),
        out_file, 'text', hits=[[int(i) == gold for i in top.indices]],
        gold=[(gold_rank, gold_info['img_path'], float(scores[gold]))])
    # image -> text for the same image
    img_scores = (text_feat @ image_feat[gold]).cpu()
    best = torch.topk(img_scores, k=3).indices.tolist()
    lines.append(f'Image query: {gold_info["filename"]}')
    for rank, j in enumerate(best, 1):
        mark = '  <- one of its captions' if j // 5 == gold else ''
        lines.append(f'  {rank}. "{captions[j]}"{mark}')
    own = img_scores[5 * gold:5 * gold + 5].max()
    lines.append(f'  (its best own caption ranks '
                 f'#{int((img_scores > own).sum()) + 1} of {len(img_scores)})')
    return '\n'.join(lines)


def main() -> None:
    args = parse_args()
    t0 = time.time()
    ann = osp.join(args.data_root, 'dataset_synthetic.json')
    if not osp.isfile(ann):
        print(f'[1/4] Generating {args.num_images} synthetic scenes '
              f'({args.image_size} px) into {args.data_root} ...')
        generate_synthetic_dataset(
            args.data_root,
            num_images=args.num_images,
            image_size=args.image_size,
            seed=args.seed,
            progress=True)
    else:
        print(f'[1/4] Using the existing scenes in {args.data_root}')

    cfg = Config.fromfile(args.config)
    cfg.work_dir = args.work_dir
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = args.data_root
    cfg.model.text_encoder.ann_files = [ann]
    if args.epochs is not None:
        cfg.train_cfg.max_epochs = args.epochs
    cfg.randomness = dict(seed=args.seed, deterministic=False)
    set_dataloader_defaults(cfg)
    setup_threads(args.threads, loader_workers(cfg))
    device = 'GPU' if torch.cuda.is_available() else 'CPU'
    if device == 'CPU':
        describe_cpu_processes()  # the Runner's header: no "GPU number"

    print(f'[2/4] Training ({device}) ...')
    t_train = time.time()
    runner = Runner.from_cfg(cfg)
    runner.train()
    train_s = time.time() - t_train

    print('[3/4] Evaluating on the held-out test split ...')
    metrics = runner.test()
    dataset = runner.test_dataloader.dataset
    chance = chance_recall(dataset.img_size)
    print(f'\nTest split: {dataset.img_size} images, '
          f'{dataset.text_size} captions')
    print('model:')
    print(format_retrieval_table(metrics))
    print('chance level (random ranking):')
    print(format_retrieval_table(chance))

    print('\n[4/4] Retrieval example ...')
    model = runner.model.module if hasattr(runner.model, 'module') \
        else runner.model
    model.eval()
    image_feat, text_feat = encode_loader(model, runner.test_dataloader)
    example_png = osp.join(runner.work_dir, 'retrieval_example.png')
    print(write_example(model, dataset, image_feat, text_feat, example_png))

    ckpt = osp.join(runner.work_dir, f'epoch_{cfg.train_cfg.max_epochs}.pth')
    print(f'\nDone in {time.time() - t0:.0f} s (training {train_s:.0f} s).')
    print(f'  checkpoint : {ckpt}')
    print(f'  logs       : {runner.log_dir}')
    print(f'  example    : {example_png}')
    print('  re-test    : python tools/test.py '
          f'{args.config} {ckpt} --cfg-options '
          f'test_dataloader.dataset.data_root={args.data_root}')


if __name__ == '__main__':
    main()
