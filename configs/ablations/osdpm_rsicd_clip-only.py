# OSDPM ablation row 1 on RSICD: CLIP only (no DAPN, no OSFCM), same
# schedule as osdpm_rsicd.py.
_base_ = ['../osdpm_rsicd.py']
model = dict(image_neck=None, image_encoder=dict(out_indices=()), heads=[])
