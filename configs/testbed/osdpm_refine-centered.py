# OSDPM testbed ablation: the full model with OSFCM's refinement mixing the
# centred prototypes (refine_centered=True: e + |e| W (a @ (P - mean_k P))
# instead of e + |e| W (a @ P)). It tests whether the component shared by
# all (near-duplicate) prototypes is what makes the refinement cost rsum
# (docs/methods/osdpm.md, "What was tried to find out why"). The head is
# repeated because configs replace lists whole; only refine_centered
# differs from osdpm_full.py.
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
        loss_weight=0.1,
        text_weight=0.5,
        warmup_iters=36,
        refine_centered=True),
])
