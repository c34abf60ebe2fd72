# OSDPM testbed ablation: the full model without OSFCM's cluster-aware
# refinement (refine=False): the object-prior clustering loss still shapes
# the embeddings during training, but the head leaves them unchanged, so
# the model at test time is CLIP + DAPN. The head is repeated because
# configs replace lists whole; only refine differs from osdpm_full.py.
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
        refine=False),
])
