# Copyright (c) rsitr_mm contributors. All rights reserved.
"""``compile``: the tensor regions as graphs, no breaks, few recompiles.

The tiny OSDPM (CLIP towers, DAPN, OSFCM, InfoNCE) trains 20 steps on
captions whose bucketed length varies (8 to 32 tokens) with
``compile=dict(backend='eager')`` (dynamo's capture without code
generation: graph breaks and recompiles are decided by dynamo, not by the
backend). Budget: 0 graph breaks, at most 2 recompiles over the 20 steps.
"""
import copy
import os.path as osp

import pytest
import torch
import transformers
from mmengine.config import Config
from mmengine.dataset import default_collate
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS

from rsitr_mm.datasets.transforms import (CaptionDataCollate,
                                          PrepareCaptionData)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))


def _batch(prepare, step, batch_size=4):
    g = torch.Generator().manual_seed(step)
    items = []
    for i in range(batch_size):
        from mmpretrain.structures import DataSample
        s = DataSample().set_gt_label(i % 2)
        words = 2 + (step * 3 + i) % 23  # 8 to 32 tokens after bucketing
        s.set_field(' '.join(['storage tank'] * (words // 2)), 'text')
        s.set_field(i // 2, 'image_id')
        img = torch.randint(0, 256, (3, 32, 32), generator=g,
                            dtype=torch.uint8)
        items.append(prepare(dict(inputs=img, data_samples=s)))
    return CaptionDataCollate(default_collate, prepare)(items)


def test_compiled_regions_no_breaks_few_recompiles(load_tool, tmp_path):
    from torch._dynamo.utils import counters
    init_default_scope('mmpretrain')
    throughput = load_tool('benchmarks', 'train_throughput')
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'osdpm_rsicd.py'))
    model_cfg = throughput.local_towers(cfg.model.to_dict(), str(tmp_path),
                                        tiny=True)
    torch.manual_seed(0)
    eager = MODELS.build(copy.deepcopy(model_cfg)).train()
    compiled = MODELS.build(dict(model_cfg, compile=dict(
        backend='eager'))).train()
    compiled.load_state_dict(eager.state_dict())
    # the state dict is the plain one (checkpoints load either way)
    assert list(compiled.state_dict()) == list(eager.state_dict())
    names = type(compiled).COMPILED_REGIONS
    assert 'text_encoder' in names

    torch._dynamo.reset()
    counters.clear()
    prepare = PrepareCaptionData(compiled.caption_data_preparers())
    opt = torch.optim.AdamW(compiled.parameters(), lr=1e-4)
    lengths = set()
    for step in range(20):
        batch = _batch(prepare, step)
        lengths.add(batch['text_data']['input_ids'].shape[1])
        data = compiled.data_preprocessor(batch, True)
        losses = compiled(**data, mode='loss')
        if step == 0:  # the same losses as the eager model
            ref = eager(**eager.data_preprocessor(
                _batch(PrepareCaptionData(eager.caption_data_preparers()),
                       step), True), mode='loss')
            for k in ref:
                torch.testing.assert_close(losses[k], ref[k])
        opt.zero_grad()
        sum(v for k, v in losses.items() if 'loss' in k).backward()
        opt.step()
    assert len(lengths) >= 3, lengths
    breaks = dict(counters['graph_break'])
    if int(transformers.__version__.split('.')[0]) >= 5:
        # transformers 5's CLIP towers break dynamo's graphs inside their
        # own forward (a threading lock among others; docs/benchmarks.md):
        # the losses matched eager above; the break and recompile budgets
        # hold for the pinned transformers only
        pytest.skip(f'transformers {transformers.__version__}: '
                    f'{sum(breaks.values())} graph breaks inside its CLIP '
                    'towers are not budgeted')
    assert sum(breaks.values()) == 0, breaks
    # one graph per compiled module, plus the recompiles
    modules = sum(1 for m in [compiled.image_encoder, compiled.image_neck,
                              compiled.text_encoder, compiled.image_proj,
                              compiled.text_proj, *compiled.losses]
                  if not isinstance(m, torch.nn.Identity))
    recompiles = counters['stats']['unique_graphs'] - modules
    assert 0 <= recompiles <= 2, dict(counters['stats'])
