# SSJDN ablation: without Label-supervised Semantic Decoupling (no scene-
# label head). The shipped LSD acts through its losses only
# (retrieval_mode='full'), so this removes the label and decoupling losses;
# the test-time model is the same network. STL keeps its label-aware
# margins (AMFMN over label + caption similarity).
_base_ = ['../ssjdn_rsitmd.py']
model = dict(heads=[])
