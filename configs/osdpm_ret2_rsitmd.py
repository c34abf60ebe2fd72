# OSDPM with the RET-2 recipe: trained on RSICD train + RSITMD train (leaks
# into the RSICD or RSITMD test split dropped, see
# clip_vit-b32_ret2_rsitmd.py), tested on RSITMD. The OSFCM object priors
# are counted over the train captions of both training sources (all of
# them, including the few dropped images: TrainDataToModelHook reads the
# sources' annotation files).
#   python tools/train.py configs/osdpm_ret2_rsitmd.py \
#       --cfg-options data_root=DIR
_base_ = [
    './osdpm_rsitmd.py',
    './_base_/datasets/ret2_sources.py',
]
data_root = 'data'

model = dict(heads=[
    dict(
        type='ObjectSemanticClusterHead',
        embed_dim=512,
        split='train',
        top_k=50,
        prototype='learnable',
        temperature=0.1,
        loss_weight=5.0,
        text_weight=0.0,  # image-side clustering only, as the paper
        warmup_iters=0),
])
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='LeakageSafeConcatDataset',
        datasets=[{{_base_.rsicd_train}}, {{_base_.rsitmd_train}}],
        exclude=[{{_base_.rsicd_test_split}}, {{_base_.rsitmd_test_split}}],
        min_shared_captions=3,
        pipeline={{_base_.train_pipeline}}))
