# SSJDN testbed ablation: the base model without any of SSJDN's modules
# (no BSD, no LSD, the plain VSE++ hardest-negative triplet instead of STL)
# on the same CLIP-architecture start and schedule.
_base_ = ['./ssjdn_no-stl.py']
model = dict(image_encoder=dict(out_indices=()), image_neck=None, heads=[])
