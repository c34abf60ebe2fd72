# SSJDN ablation: without Bidirectional Scale Decoupling (the image
# embedding is the pooled last ResNet stage, projected to 512-d).
_base_ = ['../ssjdn_rsitmd.py']
model = dict(
    image_encoder=dict(out_indices=(3, )),
    image_neck=None,
    image_in_channels=2048)
