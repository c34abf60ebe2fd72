# RET-2 recipe tested on RSICD: CLIP ViT-B/32 fine-tuned on RSICD train +
# RSITMD train, dropping every training image that shares >= 3 distinct
# (normalised) captions with an RSICD or RSITMD test image (see
# clip_vit-b32_ret2_rsitmd.py and docs/datasets.md "Leakage between
# datasets").
#   python tools/train.py configs/clip_vit-b32_ret2_rsicd.py \
#       --cfg-options data_root=DIR
_base_ = [
    './clip_vit-b32_finetune_rsicd.py',
    './_base_/datasets/ret2_sources.py',
]
data_root = 'data'

train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='LeakageSafeConcatDataset',
        datasets=[{{_base_.rsicd_train}}, {{_base_.rsitmd_train}}],
        exclude=[{{_base_.rsicd_test_split}}, {{_base_.rsitmd_test_split}}],
        min_shared_captions=3,
        # one pipeline for all sources (RSICD's 224 px crops)
        pipeline={{_base_.train_pipeline}}))
