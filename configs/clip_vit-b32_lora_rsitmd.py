# Parameter-efficient fine-tuning of CLIP ViT-B/32 on RSITMD: LoRA (rank 8,
# alpha 16) on the query/value projections of every attention layer of both
# towers; the rest of each tower is frozen, the logit scale stays trainable.
# Same data, loss and schedule as clip_vit-b32_finetune_rsitmd.py. See
# docs/peft.md for trainable parameters and memory against full fine-tuning.
# The LoRA hyper-parameters are common starting values, not tuned here.
#   python tools/train.py configs/clip_vit-b32_lora_rsitmd.py \
#       --cfg-options model.image_encoder.module.pretrained=CLIP_DIR \
#       model.text_encoder.module.pretrained=CLIP_DIR
_base_ = ['./clip_vit-b32_finetune_rsitmd.py']
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
        module=dict(
            type='CLIPVisionBackbone', pretrained=clip_path, out_indices=()),
        **lora),
    text_encoder=dict(
        _delete_=True,
        type='LoRATower',
        module=dict(type='CLIPTextEncoder', pretrained=clip_path),
        **lora),
)
# Only the adapters (and the logit scale) learn: a larger learning rate than
# full fine-tuning's 5e-6.
optim_wrapper = dict(optimizer=dict(lr=1e-4, weight_decay=0.05))
