# SSJDN ablation: without Label-supervised Semantic Decoupling (no scene-
# label head). STL keeps its label-aware margins.
_base_ = ['../ssjdn_rsitmd.py']
model = dict(heads=[])
