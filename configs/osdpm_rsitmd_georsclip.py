# OSDPM on RSITMD started from GeoRSCLIP (converted with
# tools/model_converters/clip_to_hf.py RS5M_ViT-B-32.pt
# checkpoints/georsclip-vit-b32).
_base_ = ['./osdpm_rsitmd.py']
clip_path = 'checkpoints/georsclip-vit-b32'
model = dict(
    image_encoder=dict(pretrained=clip_path),
    text_encoder=dict(pretrained=clip_path))
