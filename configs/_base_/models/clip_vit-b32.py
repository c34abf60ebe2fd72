# Plain CLIP ViT-B/32 dual encoder (the field's strong baseline).
# `clip_path` is a Hugging Face hub id (transformers downloads and caches it)
# or a local transformers CLIP directory (config.json, weights, tokenizer
# files), e.g. one made from OpenAI / OpenCLIP / RemoteCLIP / GeoRSCLIP
# weights with tools/model_converters/clip_to_hf.py. Offline machines: see
# docs/get_started.md.
clip_path = 'openai/clip-vit-base-patch32'

model = dict(
    type='DualEncoderRetriever',
    image_encoder=dict(
        type='CLIPVisionBackbone', pretrained=clip_path, out_indices=()),
    text_encoder=dict(type='CLIPTextEncoder', pretrained=clip_path),
    embed_dim=512,
    image_proj='identity',
    text_proj='identity',
    losses=[dict(type='MultiPositiveInfoNCELoss', gather_negatives=True)],
    # CLIP's trained logit scale is 100 (temperature 0.01)
    temperature=0.01,
    learnable_temperature=True,
    data_preprocessor=dict(
        type='RetrievalDataPreprocessor',
        mean=[122.770938, 116.7460125, 104.09373615],
        std=[68.5005327, 66.6321579, 70.32316305],
        to_rgb=True),
)
