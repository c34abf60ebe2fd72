# OSDPM with the RET-2 recipe: trained on RSICD train + RSITMD train (leaks
# into the RSICD or RSITMD test split dropped, see
# clip_vit-b32_ret2_rsitmd.py), tested on RSITMD. The model is that of
# osdpm_rsitmd.py (DAPN; OSFCM as the paper's image-side clustering loss at
# weight 5.0, no caption term, no refinement); only the training data differ
# (multi-dataset training is our recipe, not the paper's). The OSFCM object
# priors are counted over the train captions of both training sources (all
# of them, including the few dropped images: TrainDataToModelHook reads the
# sources' annotation files).
#   python tools/train.py configs/osdpm_ret2_rsitmd.py \
#       --cfg-options data_root=DIR
_base_ = [
    './osdpm_rsitmd.py',
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
        pipeline={{_base_.train_pipeline}}))
