# OSDPM testbed ablation: the full model with OSFCM's clustering loss off
# (loss_weight=0). The object priors still set the prototypes (each starts
# at the prior-weighted mean of the image embeddings of the first batch
# showing its noun) and the cluster-aware refinement is kept; only the pull
# of the raw embeddings towards the noun prototypes is removed. The head is
# repeated because configs replace lists whole; only loss_weight differs
# from osdpm_full.py.
_base_ = ['./osdpm_full.py']
model = dict(heads=[
    dict(
        type='ObjectSemanticClusterHead',
        embed_dim=128,
        ann_file='data/testbed/target/dataset_synthetic.json',
        split='train',
        top_k=30,
        prototype='learnable',
        temperature=0.1,
        loss_weight=0.0,
        text_weight=0.5,
        warmup_iters=36),
])
