# OSDPM at demo scale (generated scenes, CPU): a small CLIP-architecture
# dual encoder (ViT 64 px / patch 8, width 64, 4 layers; text transformer
# with the real CLIP BPE tokenizer) + DAPN + OSFCM + contrastive loss.
# OSFCM as the paper describes it: the image-side clustering loss only
# (text_weight=0, refine=False; our extensions stay off).
# There are no pretrained weights at this scale: `clip_path` is a randomly
# initialised CLIP directory that tools/analysis_tools/run_demo_ablation.py
# creates (rsitr_mm.models.utils.make_tiny_clip_dir), so every ablation row
# starts from the same weights.
_base_ = ['./demo_tinycnn-bigru_synthetic.py']
data_root = 'data/synthetic_demo'
clip_path = data_root + '/tiny_clip_init'

model = dict(
    image_encoder=dict(
        _delete_=True,
        type='CLIPVisionBackbone',
        pretrained=clip_path,
        out_indices=(-2, ),
        hidden_norm=True),
    image_neck=dict(
        type='DualAttentionPerception',
        in_channels=64,
        embed_dim=64,
        region_scales=(1, 2, 4),
        reduction=4,
        fusion='residual',
        residual_scale=1.0),
    text_encoder=dict(
        _delete_=True,
        type='CLIPTextEncoder',
        pretrained=clip_path,
        max_length=40),
    embed_dim=64,
    image_in_channels=None,
    text_in_channels=None,
    image_proj='identity',
    text_proj='identity',
    heads=[
        dict(
            type='ObjectSemanticClusterHead',
            embed_dim=64,
            split='train',
            top_k=30,
            prototype='learnable',
            temperature=0.1,
            loss_weight=5.0,  # as configs/_base_/models/osdpm_clip_vit-b32.py
            text_weight=0.0,  # the paper's OSFCM: image-side clustering only
            warmup_iters=0,
            refine=False),
    ],
    losses=[dict(type='MultiPositiveInfoNCELoss')],
    data_preprocessor=dict(
        _delete_=True,
        type='RetrievalDataPreprocessor',
        mean=[122.770938, 116.7460125, 104.09373615],
        std=[68.5005327, 66.6321579, 70.32316305],
        to_rgb=True),
)
optim_wrapper = dict(
    optimizer=dict(lr=1e-3),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        flat_decay_mult=0.0,
        custom_keys={
            'image_neck': dict(decay_mult=0.0),
            'heads': dict(decay_mult=0.0),
            'logit_scale': dict(decay_mult=0.0)
        }))
