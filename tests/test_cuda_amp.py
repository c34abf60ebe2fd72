# Copyright (c) rsitr_mm contributors. All rights reserved.
"""On a GPU: one AMP training step of every shipped config (tiny towers)
and the exact test loop on the device. Marked ``cuda``; skipped without a
GPU (``pytest -m cuda`` runs only these)."""
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from test_configs import CONFIGS, _localise, _name, assets  # noqa: F401

from rsitr_mm.evaluation import retrieval_recall

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(),
                       reason='needs a CUDA GPU'),
]


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16],
                         ids=['fp16', 'bf16'])
@pytest.mark.parametrize('path', CONFIGS, ids=_name)
def test_amp_step_and_test_loop_on_gpu(path, dtype, assets):  # noqa: F811
    from mmengine.optim import AmpOptimWrapper
    cfg = Config.fromfile(path)
    init_default_scope('mmpretrain')
    model = MODELS.build(_localise(cfg.model.to_dict(), assets)).cuda()
    clip_based = cfg.model.image_encoder.type == 'CLIPVisionBackbone'
    size = 32 if clip_based else 64
    torch.manual_seed(0)
    b = 4
    samples = []
    for i in range(b):
        s = DataSample().set_gt_label(i % 2)
        s.set_field(f'a caption number {i} with two tanks', 'text')
        s.set_field(i // 2, 'image_id')
        samples.append(s)
    batch = dict(inputs=torch.randint(0, 255, (b, 3, size, size),
                                      dtype=torch.uint8),
                 data_samples=samples)
    wrapper = AmpOptimWrapper(
        optimizer=torch.optim.AdamW(model.parameters(), lr=1e-4),
        dtype='float16' if dtype == torch.float16 else 'bfloat16',
        loss_scale='dynamic' if dtype == torch.float16 else 1.0)
    model.train()
    before = [p.detach().clone() for p in model.parameters()
              if p.requires_grad]
    after = [p for p in model.parameters() if p.requires_grad]
    # fp16's dynamic loss scale starts at 2**16 and skips the steps whose
    # gradients overflow, halving the scale each time: a few steps at most
    for _ in range(8 if dtype == torch.float16 else 1):
        losses = model.train_step(batch, wrapper)
        assert all(torch.isfinite(v).all() for v in losses.values())
        if any(not torch.equal(a, b) for a, b in zip(before, after)):
            break
    assert any(not torch.equal(a, b) for a, b in zip(before, after))

    # exact test loop on the device: features, similarity, recalls there
    model.eval()
    with torch.no_grad(), torch.autocast('cuda', dtype=dtype):
        data = model.data_preprocessor(batch, False)
        feats = model(**data, mode='tensor')
        img = feats['image_feat'][::2]  # 2 images
        txt = feats['text_feat']  # 4 captions, 2 per image
        sim = model.compute_similarity(img, txt)
    assert sim.is_cuda
    assert retrieval_recall(sim, captions_per_image=2) == \
        retrieval_recall(sim.cpu(), captions_per_image=2)
