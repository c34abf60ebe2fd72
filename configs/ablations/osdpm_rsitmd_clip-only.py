# OSDPM ablation row 1 on RSITMD: CLIP only (no DAPN, no OSFCM), same
# schedule as osdpm_rsitmd.py.
_base_ = ['../osdpm_rsitmd.py']
model = dict(image_neck=None, image_encoder=dict(out_indices=()), heads=[])
