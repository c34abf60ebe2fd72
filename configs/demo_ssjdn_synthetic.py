# SSJDN at demo scale (generated scenes, CPU): TinyCNN stages 2-4 -> BSD,
# BiGRU text encoder, LSD head on the 10 scene classes (loss-only,
# retrieval_mode='full', as in configs/ssjdn_*.py), STL loss. Used by
# tools/analysis_tools/run_demo_ablation.py --method ssjdn.
_base_ = ['./demo_tinycnn-bigru_synthetic.py']

model = dict(
    image_encoder=dict(
        type='TinyCNN', base_channels=32, num_stages=4, out_indices=(1, 2, 3)),
    image_neck=dict(
        type='BidirectionalScaleDecoupling',
        in_channels=[64, 128, 256],
        channels=64,
        salience='conv',
        suppression='soft',
        directions=('f2c', 'c2f'),
        fusion='concat'),
    image_in_channels=256,
    heads=[
        dict(
            type='LabelSemanticHead',
            in_channels=256,
            num_classes=10,
            semantic_dim=64,
            retrieval_mode='full',  # losses only; 'residual' is our opt-in
            loss_weight_image=0.1,
            loss_weight_text=0.1),
    ],
    losses=[
        dict(
            type='SemanticGuidedTripletLoss',
            margin=0.2,
            max_violation=True,
            semantic='amfmn',
            amfmn_prior='label_text',
            warmup_iters=100),
    ],
)
optim_wrapper = dict(
    optimizer=dict(lr=5e-4),
    paramwise_cfg=dict(custom_keys={
        'image_encoder': dict(lr_mult=0.1),
        'image_neck': dict(decay_mult=0.0),
        'heads': dict(decay_mult=0.0),
    }))
