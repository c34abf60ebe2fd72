# OSDPM testbed ablation: the pretrained CLIP start fine-tuned alone.
_base_ = ['./osdpm_full.py']
model = dict(image_neck=None, image_encoder=dict(out_indices=()), heads=[])
