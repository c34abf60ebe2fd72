# OSDPM with parameter-efficient towers on RSITMD: LoRA (rank 8, alpha 16)
# on the query/value projections of both frozen CLIP ViT-B/32 towers; the
# DAPN neck, the OSFCM head and the logit scale train in full. Same data,
# model (DAPN on the penultimate layer; OSFCM as the paper's image-side
# clustering loss, no caption term, no refinement), loss and schedule as
# osdpm_rsitmd.py, except the optimizer below. LoRA is our extension, not
# the paper's. See docs/peft.md for trainable parameters and memory against
# full fine-tuning. The LoRA hyper-parameters are common starting values,
# not tuned here.
#   python tools/train.py configs/osdpm_lora_rsitmd.py \
#       --cfg-options model.image_encoder.module.pretrained=CLIP_DIR \
#       model.text_encoder.module.pretrained=CLIP_DIR
_base_ = ['./osdpm_rsitmd.py']
# Hub id or local CLIP directory (see _base_/models/clip_vit-b32.py).
clip_path = 'openai/clip-vit-base-patch32'
lora = dict(
    alpha=16,
    rank=8,
    drop_rate=0.1,
    targets=[dict(type='q_proj'), dict(type='v_proj')])

model = dict(
    image_encoder=dict(
        _delete_=True,
        type='LoRATower',
        # the layer DAPN reads in osdpm_rsitmd.py: the penultimate, through
        # the final LayerNorm (docs/methods/osdpm.md, "Which layer")
        module=dict(
            type='CLIPVisionBackbone', pretrained=clip_path,
            out_indices=(-2, ), hidden_norm=True),
        **lora),
    text_encoder=dict(
        _delete_=True,
        type='LoRATower',
        module=dict(type='CLIPTextEncoder', pretrained=clip_path),
        **lora),
)
# The adapters, DAPN and OSFCM all learn at 1e-4 (full fine-tuning: 5e-6 for
# the towers, 20x that for the new modules).
optim_wrapper = dict(
    optimizer=dict(lr=1e-4, weight_decay=0.05),
    paramwise_cfg=dict(
        custom_keys={
            'image_neck': dict(lr_mult=1.0),
            'heads': dict(lr_mult=1.0),
        }))
