# SSJDN ablation: without the Semantic-guided Triplet Loss: STL with the
# semantic term off is the VSE++ triplet loss (same warm-up: sum over
# negatives for 300 iterations, then the hardest).
_base_ = ['../ssjdn_rsitmd.py']
model = dict(losses=[
    dict(type='SemanticGuidedTripletLoss', margin=0.2, semantic='none')
])
