# Zero-shot retrieval with pretrained CLIP ViT-B/32 (no training):
#   python tools/test.py configs/clip_vit-b32_zeroshot_sydney.py
# Literature reference for OpenAI CLIP ViT-B/32 zero-shot (papers' numbers):
# RSITMD mR 24.19, RSICD mR 15.74.
_base_ = [
    './_base_/models/clip_vit-b32.py',
    './_base_/datasets/sydney.py',
    './_base_/default_runtime.py',
]
test_cfg = dict(type='RSRetrievalTestLoop')
# evaluation only
train_dataloader = None
train_cfg = None
val_dataloader = None
val_cfg = None
val_evaluator = None
