"""BSD and DAPN drop into an mmpretrain ImageClassifier (neck convention:
a tuple out), configured from a file outside the repository, and train for
a few iterations on the real RSSCN7 sample."""
import os.path as osp
import textwrap

import pytest
import torch

CONFIG = '''
custom_imports = dict(imports=['rsitr_mm'], allow_failed_imports=False)
default_scope = 'mmpretrain'
model = dict(
    type='ImageClassifier',
    backbone=dict(type='ResNet', depth=18, base_channels=8,
                  stem_channels=8, out_indices={out_indices}),
    neck={neck},
    head=dict(type='LinearClsHead', num_classes=7, in_channels={head_in},
              loss=dict(type='CrossEntropyLoss')))
data_preprocessor = dict(num_classes=7, mean=[123.675, 116.28, 103.53],
                         std=[58.395, 57.12, 57.375], to_rgb=True)
train_dataloader = dict(
    batch_size=8, num_workers=0,
    dataset=dict(type='CustomDataset', data_root='{root}',
                 pipeline=[dict(type='LoadImageFromFile'),
                           dict(type='Resize', scale=64),
                           dict(type='PackInputs')]),
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'))
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9))
train_cfg = dict(by_epoch=False, max_iters=4)
default_hooks = dict(logger=dict(type='LoggerHook', interval=1),
                     checkpoint=None)
randomness = dict(seed=0)
'''

NECKS = {
    'bsd': ('(1, 2, 3)',
            "dict(type='BidirectionalScaleDecoupling', "
            'in_channels=[16, 32, 64], channels=16)', 64),
    'dapn': ('(3, )',
             "dict(type='DualAttentionPerception', in_channels=64, "
             "embed_dim=32, fusion='replace', region_scales=(1, 2))", 32),
}


@pytest.mark.parametrize('name', sorted(NECKS))
def test_neck_trains_inside_an_image_classifier(name, tmp_path,
                                                shared_data):
    from mmengine.config import Config
    from mmengine.runner import Runner
    out_indices, neck, head_in = NECKS[name]
    cfg_file = tmp_path / f'{name}_rsscn7.py'  # outside the repository
    cfg_file.write_text(textwrap.dedent(CONFIG).format(
        out_indices=out_indices, neck=neck, head_in=head_in,
        root=osp.join(shared_data, 'rsscn7_sample')))
    cfg = Config.fromfile(str(cfg_file))
    cfg.work_dir = str(tmp_path / 'work')
    runner = Runner.from_cfg(cfg)
    neck_module = runner.model.neck
    before = {k: v.clone() for k, v in neck_module.state_dict().items()}
    images = torch.randn(2, 3, 64, 64)
    out = neck_module(runner.model.backbone(images))
    assert isinstance(out, tuple) and out[0].shape == (2, head_in)
    runner.train()
    after = neck_module.state_dict()
    moved = [k for k in before
             if before[k].is_floating_point()
             and not torch.equal(before[k], after[k])]
    assert moved, f'{name}: no neck parameter moved in 4 iterations'


def test_dapn_on_a_cnn_without_replace_names_the_fusion():
    """A CNN gives no global token: the default fusion fails with one error
    that says which fusion works."""
    from rsitr_mm.models.necks import DualAttentionPerception
    neck = DualAttentionPerception(in_channels=64, embed_dim=32,
                                   region_scales=(1, 2))
    with pytest.raises(ValueError, match="needs fusion='replace'"):
        neck((torch.randn(2, 64, 4, 4), ))
    replace = DualAttentionPerception(in_channels=64, embed_dim=32,
                                      region_scales=(1, 2), fusion='replace')
    assert replace((torch.randn(2, 64, 4, 4), ))[0].shape == (2, 32)
