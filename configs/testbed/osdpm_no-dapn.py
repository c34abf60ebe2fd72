# OSDPM testbed ablation: CLIP start + OSFCM, without DAPN (the image
# embedding is CLIP's own global embedding).
_base_ = ['./osdpm_full.py']
model = dict(image_neck=None, image_encoder=dict(out_indices=()))
