# The CLIP fine-tune started from GeoRSCLIP weights instead of OpenAI's.
# Convert the published OpenCLIP checkpoint once:
#   python tools/model_converters/clip_to_hf.py RS5M_ViT-B-32.pt \
#       checkpoints/georsclip-vit-b32
# The same one-line switch works for every CLIP-based config, e.g.
#   python tools/train.py configs/osdpm_rsitmd.py \
#       --cfg-options model.image_encoder.pretrained=checkpoints/georsclip-vit-b32 \
#       model.text_encoder.pretrained=checkpoints/georsclip-vit-b32
_base_ = ['./clip_vit-b32_finetune_rsitmd.py']
clip_path = 'checkpoints/georsclip-vit-b32'
model = dict(
    image_encoder=dict(pretrained=clip_path),
    text_encoder=dict(pretrained=clip_path))
