# RET-3 recipe: CLIP ViT-B/32 fine-tuned on RSICD + RSITMD + UCM-Captions
# train splits, tested on RSITMD; training images leaking into the RSICD,
# RSITMD or UCM test split (>= 3 shared distinct normalised captions) are
# dropped. Expected layout under data/: rsicd/, rsitmd/ (see
# clip_vit-b32_ret2_rsitmd.py) and ucm/{dataset.json, images/}.
#   python tools/train.py configs/clip_vit-b32_ret3_rsitmd.py \
#       --cfg-options data_root=DIR
_base_ = ['./clip_vit-b32_ret2_rsitmd.py']

train_dataloader = dict(
    dataset=dict(
        datasets=[
            {{_base_.rsicd_train}}, {{_base_.rsitmd_train}},
            {{_base_.ucm_train}}
        ],
        exclude=[
            {{_base_.rsicd_test_split}}, {{_base_.rsitmd_test_split}},
            {{_base_.ucm_test_split}}
        ]))
