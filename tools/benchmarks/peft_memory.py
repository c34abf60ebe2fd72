# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Trainable parameters and CPU memory per training step: LoRA vs full
fine-tuning.

Each model is built from a shipped config with the CLIP towers' weights
replaced by RANDOM ones of the same architecture (``config=`` instead of
``pretrained=``; parameter counts and memory depend on the architecture
only): ViT-B/32 (OpenAI's ``clip-vit-base-patch32`` shapes) and, for the
counts, ViT-L/14 (``clip-vit-large-patch14`` shapes). The OSFCM head's
vocabulary is mined from a small generated caption file, so its size
(K x D prototypes, K <= top_k) may differ from RSITMD's.

Memory: every measured run is a fresh subprocess (runs alternate between
the configs, ``--repeats`` rounds). In it the model and its optimizer
wrapper are built from the config, one batch of ``--batch-size`` generated
images (the config's own train pipeline: 256 px crops) with one caption
each is prepared, and ``model.train_step`` (the Runner's path: data
preprocessor, loss, backward, gradient clipping, AdamW step) runs once to
warm up (AdamW allocates its state). Linux's peak resident set size of the
process (``VmHWM``) is then reset through ``/proc/self/clear_refs`` and
``--steps`` more steps run. Reported, in MiB:

* ``model``: RSS after building the model minus RSS before (weights);
* ``peak step``: VmHWM during the measured steps minus the RSS before the
  model was built, i.e. weights + gradients + optimizer state +
  activations (+ whatever the allocator keeps).

The figure per config is the median over the rounds.

Example::

    python tools/benchmarks/peft_memory.py --batch-size 8 --repeats 2
"""
import argparse
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import tempfile

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

PAIRS = [
    ('clip_vit-b32_finetune_rsitmd.py', 'clip_vit-b32_lora_rsitmd.py'),
    ('osdpm_rsitmd.py', 'osdpm_lora_rsitmd.py'),
]

#: ``transformers.CLIPConfig`` of each architecture (OpenAI's shapes).
ARCHS = {
    'ViT-B/32':
    dict(
        vision_config=dict(
            hidden_size=768,
            intermediate_size=3072,
            num_hidden_layers=12,
            num_attention_heads=12,
            patch_size=32,
            image_size=224),
        text_config=dict(
            hidden_size=512,
            intermediate_size=2048,
            num_hidden_layers=12,
            num_attention_heads=8),
        projection_dim=512),
    'ViT-L/14':
    dict(
        vision_config=dict(
            hidden_size=1024,
            intermediate_size=4096,
            num_hidden_layers=24,
            num_attention_heads=16,
            patch_size=14,
            image_size=224),
        text_config=dict(
            hidden_size=768,
            intermediate_size=3072,
            num_hidden_layers=12,
            num_attention_heads=12),
        projection_dim=768),
}


def _status_kib(field: str) -> int:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise RuntimeError(f'{field} not in /proc/self/status')


def _model_cfg(config: str, arch: str, assets: dict) -> dict:
    """The config's model with random towers of ``arch``."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO, 'configs', config))
    m = cfg.model.to_dict()
    clip = ARCHS[arch]
    for key in ('image_encoder', 'text_encoder'):
        tower = m[key].get('module', m[key])
        tower.pop('pretrained', None)
        tower['config'] = clip
        if key == 'text_encoder':
            tower['tokenizer'] = assets['tokenizer']
    width = clip['vision_config']['hidden_size']
    dim = clip['projection_dim']
    m['embed_dim'] = dim
    if m.get('image_neck'):
        m['image_neck'].update(in_channels=width, embed_dim=dim)
    for head in m.get('heads') or []:
        head.update(embed_dim=dim, ann_file=assets['ann'], priors_file=None)
    return cfg, m


def child(args) -> None:
    """Build one config (and optionally train it); print a json line."""
    import torch
    torch.set_num_threads(args.threads)
    sys.path.insert(0, REPO)
    from mmengine.logging import MMLogger
    MMLogger.get_instance('peft_memory', log_level='WARNING')
    import rsitr_mm  # noqa: F401
    from mmengine.dataset import default_collate
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import DATASETS, MODELS

    assets = json.loads(args.assets)
    init_default_scope('mmpretrain')
    cfg, model_cfg = _model_cfg(args.child, args.arch, assets)
    torch.manual_seed(0)
    rss_before = _status_kib('VmRSS')
    model = MODELS.build(model_cfg)
    out = dict(
        config=args.child,
        arch=args.arch,
        total=sum(p.numel() for p in model.parameters()),
        trainable=sum(p.numel() for p in model.parameters()
                      if p.requires_grad))
    if args.measure:
        out['model_mib'] = (_status_kib('VmRSS') - rss_before) / 1024
        optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
        dataset = DATASETS.build(
            dict(
                type='SyntheticScenes',
                data_root=osp.dirname(assets['ann']),
                ann_file=osp.basename(assets['ann']),
                data_prefix=dict(img_path='images'),
                split='train',
                pipeline=cfg.train_pipeline))
        batch = default_collate([dataset[i] for i in range(args.batch_size)])
        model.train()
        model.train_step(batch, optim_wrapper)  # warm-up: AdamW state
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')  # reset VmHWM to the current RSS
        for _ in range(args.steps):
            losses = model.train_step(batch, optim_wrapper)
        out['peak_step_mib'] = (_status_kib('VmHWM') - rss_before) / 1024
        out['loss'] = float(losses['loss'])
        out['image_shape'] = list(batch['inputs'][0].shape)
    print('RESULT ' + json.dumps(out), flush=True)


def _spawn(config: str, arch: str, assets: dict, args, measure: bool) -> dict:
    cmd = [
        sys.executable,
        osp.abspath(__file__), '--child', config, '--arch', arch, '--assets',
        json.dumps(assets), '--batch-size',
        str(args.batch_size), '--steps',
        str(args.steps), '--threads',
        str(args.threads)
    ] + (['--measure'] if measure else [])
    env = dict(os.environ, PYTHONPATH=REPO)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith('RESULT ')]
    if proc.returncode or not lines:
        raise RuntimeError(f'{config} ({arch}) failed:\n' +
                           (proc.stdout + proc.stderr)[-3000:])
    return json.loads(lines[-1][len('RESULT '):])


def _m(n: int) -> str:
    return f'{n / 1e6:.2f} M' if n >= 1e5 else f'{n / 1e3:.1f} k'


def main(args) -> None:
    sys.path.insert(0, REPO)
    from rsitr_mm.datasets.synthetic import generate_synthetic_dataset
    from rsitr_mm.models.utils.clip_tokenizer_files import \
        write_clip_tokenizer_files
    tmp = tempfile.mkdtemp(prefix='peft_memory_')
    ann = generate_synthetic_dataset(
        osp.join(tmp, 'data'),
        num_images=max(16, 2 * args.batch_size) + 2,
        image_size=256,
        seed=0,
        split=(max(16, 2 * args.batch_size), 1, 1),
        progress=False)
    assets = dict(
        ann=ann, tokenizer=write_clip_tokenizer_files(osp.join(tmp, 'tok')))
    configs = [c for pair in PAIRS for c in pair]

    runs = {c: [] for c in configs}
    for r in range(args.repeats):  # interleaved rounds
        for config in configs:
            runs[config].append(
                _spawn(config, 'ViT-B/32', assets, args, measure=True))
            print(f'round {r}: {config} {runs[config][-1]}', file=sys.stderr)
    counts = {('ViT-B/32', c): runs[c][0] for c in configs}
    for arch in args.count_archs:  # built, not trained
        for config in configs:
            counts[(arch, config)] = _spawn(
                config, arch, assets, args, measure=False)
            print(f'counted {arch} {config}', file=sys.stderr)

    print('\n### Trainable parameters\n')
    print('| arch | config | total | trainable | trainable share |')
    print('|---|---|---:|---:|---:|')
    for (arch, config), c in counts.items():
        print(f"| {arch} | {config} | {_m(c['total'])} | "
              f"{_m(c['trainable'])} | "
              f"{100 * c['trainable'] / c['total']:.2f} % |")
    print(f'\n### CPU memory, ViT-B/32, batch {args.batch_size}, '
          f'median of {args.repeats} runs (MiB)\n')
    print('| config | model | peak step (above pre-build RSS) |')
    print('|---|---:|---:|')
    summary = {}
    for config in configs:
        model = statistics.median(r['model_mib'] for r in runs[config])
        peak = statistics.median(r['peak_step_mib'] for r in runs[config])
        summary[config] = dict(
            model_mib=model,
            peak_step_mib=peak,
            runs=[{
                k: r[k]
                for k in ('model_mib', 'peak_step_mib', 'loss')
            } for r in runs[config]])
        print(f'| {config} | {model:.0f} | {peak:.0f} |')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(
                dict(
                    counts=[dict(c) for c in counts.values()],
                    memory=summary,
                    batch_size=args.batch_size,
                    steps=args.steps,
                    repeats=args.repeats,
                    image_shape=runs[configs[0]][0]['image_shape']),
                f,
                indent=1)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--batch-size', type=int, default=8)
    p.add_argument(
        '--steps',
        type=int,
        default=1,
        help='measured steps per run (after one warm-up step)')
    p.add_argument(
        '--repeats',
        type=int,
        default=2,
        help='interleaved rounds of memory runs')
    p.add_argument('--threads', type=int, default=2)
    p.add_argument(
        '--count-archs',
        nargs='*',
        default=['ViT-L/14'],
        choices=list(ARCHS),
        help='more architectures to count (ViT-B/32 is counted '
        'by the memory runs)')
    p.add_argument('--out', help='also write the figures to this json')
    # internal: one run in a subprocess
    p.add_argument('--child', help=argparse.SUPPRESS)
    p.add_argument('--arch', default='ViT-B/32', help=argparse.SUPPRESS)
    p.add_argument('--assets', help=argparse.SUPPRESS)
    p.add_argument('--measure', action='store_true', help=argparse.SUPPRESS)
    return p.parse_args(argv)


if __name__ == '__main__':
    args = parse_args()
    if args.child:
        child(args)
    else:
        main(args)
