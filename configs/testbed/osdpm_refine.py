# OSDPM testbed, OUR EXTENSIONS (not the paper's): OSFCM with the caption-side
# clustering term (text_weight=0.5) and the cluster-aware residual
# refinement of both embeddings (refine=True), as configs/osdpm-refine_*.py.
# The head is repeated because configs replace lists whole.
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
        loss_weight=5.0,
        text_weight=0.5,
        refine=True,
        warmup_iters=0),
])
