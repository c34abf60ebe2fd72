# SSJDN testbed ablation: without BSD (the CLIP global embedding, through
# the same linear projection).
_base_ = ['./ssjdn_full.py']
model = dict(
    image_encoder=dict(out_indices=()), image_neck=None,
    image_in_channels=128)
