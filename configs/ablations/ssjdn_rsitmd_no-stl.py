# SSJDN ablation: without the Semantic-guided Triplet Loss: STL with the
# semantic term off is exactly the VSE++ hardest-negative triplet loss.
_base_ = ['../ssjdn_rsitmd.py']
model = dict(losses=[
    dict(type='SemanticGuidedTripletLoss', margin=0.2, semantic='none')
])
