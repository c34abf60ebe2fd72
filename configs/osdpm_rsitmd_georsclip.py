# OSDPM on RSITMD started from GeoRSCLIP (converted with
# tools/model_converters/clip_to_hf.py RS5M_ViT-B-32.pt
# checkpoints/georsclip-vit-b32). Only the start differs from
# osdpm_rsitmd.py: the same DAPN and the same OSFCM (the paper's image-side
# clustering loss; no caption term, no refinement). The GeoRSCLIP start is
# ours, not the paper's (which used CLIP).
_base_ = ['./osdpm_rsitmd.py']
clip_path = 'checkpoints/georsclip-vit-b32'
model = dict(
    image_encoder=dict(pretrained=clip_path),
    text_encoder=dict(pretrained=clip_path))
