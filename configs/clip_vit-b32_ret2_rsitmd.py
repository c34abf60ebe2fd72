# RET-2 recipe (as in GeoRSCLIP's fine-tuning): CLIP ViT-B/32 fine-tuned on
# RSICD train + RSITMD train together, tested on RSITMD. Every training
# image that shares >= 3 distinct (normalised) captions with an image of the
# RSICD or RSITMD *test* split is dropped (LeakageSafeConcatDataset logs the
# rule and the counts; docs/datasets.md "Leakage between datasets" has
# them for the public annotation files). Expected layout under data/:
#   rsicd/{dataset_rsicd.json, rsicd_classes/, images/}
#   rsitmd/{dataset_rsitmd.json, images/}
#   python tools/train.py configs/clip_vit-b32_ret2_rsitmd.py \
#       --cfg-options data_root=DIR
_base_ = [
    './clip_vit-b32_finetune_rsitmd.py',
    './_base_/datasets/ret2_sources.py',
]
# the parent of every dataset folder: `--cfg-options data_root=DIR` moves
# all of them
data_root = 'data'

train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='LeakageSafeConcatDataset',
        datasets=[{{_base_.rsicd_train}}, {{_base_.rsitmd_train}}],
        exclude=[{{_base_.rsicd_test_split}}, {{_base_.rsitmd_test_split}}],
        min_shared_captions=3,
        # one pipeline for all sources (RSITMD's 256 px crops)
        pipeline={{_base_.train_pipeline}}))
