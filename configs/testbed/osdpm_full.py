# OSDPM on the synthetic testbed: the shipped OSDPM model (DAPN + OSFCM's
# clustering objective +
# contrastive loss; schedule: _base_/schedules/testbed_finetune_3e.py) on
# a small CLIP-architecture start pretrained on the testbed's disjoint
# domain (tools/analysis_tools/pretrain_testbed_start.py: ViT 128 px /
# patch 16 -> 8x8 grid, width 128, 4 layers). The ablation runner
# (tools/analysis_tools/run_ablation.py) sets the paths and epochs.
_base_ = [
    '../_base_/models/osdpm_clip_vit-b32.py',
    '../_base_/datasets/synthetic_testbed.py',
    '../_base_/schedules/testbed_finetune_3e.py',
    '../_base_/default_runtime.py',
]
data_root = 'data/testbed/target'
clip_path = 'data/testbed/clip_start'
width = 128

model = dict(
    image_encoder=dict(pretrained=clip_path),
    image_neck=dict(in_channels=width, embed_dim=width),
    text_encoder=dict(pretrained=clip_path, max_length=32),
    embed_dim=width,
    # the small start was pretrained from CLIP's initial scale (1/0.07), not
    # the 1/0.01 of trained CLIP; learnable as in the shipped config
    temperature=0.07,
    heads=[
        dict(
            type='ObjectSemanticClusterHead',
            embed_dim=width,
            ann_file=data_root + '/dataset_synthetic.json',
            split='train',
            top_k=30,
            prototype='learnable',
            temperature=0.1,
            loss_weight=5.0,
            # the paper's OSFCM, as configs/osdpm_*.py: image-side
            # clustering objective only, no refinement of the embeddings
            text_weight=0.0,
            refine=False,
            # as the shipped config: no warm-up
            warmup_iters=0),
    ],
)
train_dataloader = dict(batch_size=64)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(interval=3,  # max_epochs (run_ablation.py rewrites it)
                    max_keep_ckpts=1))
randomness = dict(seed=0, deterministic=False)
