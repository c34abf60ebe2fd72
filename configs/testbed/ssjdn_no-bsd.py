# SSJDN testbed ablation: without BSD (the CLIP global embedding alone, which
# is also BSD's main path in the full model).
_base_ = ['./ssjdn_full.py']
model = dict(image_encoder=dict(out_indices=()), image_neck=None)
