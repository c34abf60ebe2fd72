# Full fine-tuning of CLIP ViT-B/32 on RSITMD with the symmetric
# multi-positive InfoNCE loss (captions of the same image are positives).
# Reported for this baseline in the literature (the papers' numbers, not
# ours): mR 45.33 on RSITMD, 30.39 on RSICD.
#   python tools/train.py configs/clip_vit-b32_finetune_rsitmd.py \
#       --cfg-options model.image_encoder.pretrained=CLIP_DIR \
#       model.text_encoder.pretrained=CLIP_DIR
_base_ = [
    './_base_/models/clip_vit-b32.py',
    './_base_/datasets/rsitmd.py',
    './_base_/schedules/clip_finetune_10e.py',
    './_base_/default_runtime.py',
]
train_dataloader = dict(batch_size=128)
# batch_size is per process; InfoNCE gathers every process's rows, so N GPUs
# contrast N x 128 pairs per step. --auto-scale-lr scales lr by
# N x batch_size / 128 (docs/distributed.md).
