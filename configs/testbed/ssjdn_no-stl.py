# SSJDN testbed ablation: STL with the semantic term off, i.e. the plain
# VSE++ hardest-negative triplet with a constant margin, as the retrieval
# loss (everything else as ssjdn_full.py).
_base_ = ['./ssjdn_full.py']
model = dict(losses=[
    dict(
        type='SemanticGuidedTripletLoss',
        margin=0.2,
        max_violation=True,
        semantic='none',
        warmup_iters=24),
])
