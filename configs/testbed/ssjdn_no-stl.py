# SSJDN testbed ablation: STL with the semantic term off (plain VSE++
# hardest-negative triplet next to InfoNCE).
_base_ = ['./ssjdn_full.py']
model = dict(losses=[
    dict(type='MultiPositiveInfoNCELoss', gather_negatives=True),
    dict(
        type='SemanticGuidedTripletLoss',
        margin=0.2,
        semantic='none',
        loss_weight=0.5,
        warmup_iters=24),
])
