# Copyright (c) rsitr_mm contributors. All rights reserved.
from typing import Dict, List, Optional, Union

import torch
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS

from ..utils.caption_tokens import (HFCaptionTokenizer, is_token_batch,
                                    tokenize_captions)
from ..utils.hf_utils import (hf_from_pretrained, load_clip_tower,
                              protect_hf_init)

TextsOrTokens = Union[List[str], Dict[str, torch.Tensor]]


def _load_tokenizer(path: Optional[str], field: str, clip: bool = False):
    """Load a tokenizer from a local directory or hub id:
    ``CLIPTokenizerFast`` for CLIP (it also reads a bare ``vocab.json`` +
    ``merges.txt`` pair), else ``AutoTokenizer``."""
    from transformers import AutoTokenizer, CLIPTokenizerFast
    cls = CLIPTokenizerFast if clip else AutoTokenizer
    return hf_from_pretrained(cls, path, field, 'clip' if clip else 'bert')


class _HFTextBase(BaseModule):
    """Shared tokenise-and-freeze logic of the ``transformers`` text
    encoders."""

    def _setup_common(self, freeze: bool) -> None:
        protect_hf_init(self.model)
        self.freeze = freeze
        if freeze:
            self.model.eval()
            for p in self.model.parameters():
                p.requires_grad = False

    def train(self, mode: bool = True):
        """Set train mode; a frozen model stays in eval mode."""
        super().train(mode)
        if self.freeze:
            self.model.eval()
        return self

    @property
    def caption_tokenizer(self) -> HFCaptionTokenizer:
        """The host-side tokenizer (no weights) the data pipeline uses."""
        return HFCaptionTokenizer(self.tokenizer, self.max_length)

    def tokenize(self, texts: List[str]) -> dict:
        """Tokenise a batch (truncated to ``max_length``, padded to the
        longest caption rounded up to a multiple of 8) on the module's
        device, with :func:`~rsitr_mm.models.utils.caption_tokens.
        tokenize_captions`.

        Returns:
            dict: ``input_ids`` and ``attention_mask``, each (T, L).
        """
        device = next(self.model.parameters()).device
        batch = tokenize_captions(self.caption_tokenizer, texts, device,
                                  type(self).__name__)
        return {k: batch[k] for k in ('input_ids', 'attention_mask')}

    def _tokens(self, texts: TextsOrTokens) -> Dict[str, torch.Tensor]:
        """``input_ids`` / ``attention_mask`` of a token batch (from the
        data pipeline) or of captions (tokenised here)."""
        if is_token_batch(texts):
            return {k: texts[k] for k in ('input_ids', 'attention_mask')}
        return self.tokenize(texts)


@MODELS.register_module()
class CLIPTextEncoder(_HFTextBase):
    """CLIP text transformer wrapping ``transformers``' CLIP text model.

    ``forward(texts)`` tokenises the whole batch with the CLIP tokenizer and
    returns exactly ``CLIPModel.get_text_features`` (the projected EOT
    token; not L2-normalised) when ``with_proj`` is True, or the
    final-LayerNormed EOT token (T, width) otherwise.

    Args:
        pretrained (str, optional): Local ``transformers`` CLIP directory or
            a hub id (``openai/clip-vit-base-patch32``).
        config (dict, optional): ``CLIPConfig`` dict (with ``text_config``)
            or ``CLIPTextConfig`` fields for random initialisation. Give
            exactly one of ``pretrained`` / ``config``.
        tokenizer (str, optional): Local CLIP tokenizer directory (read with
            ``CLIPTokenizerFast``; ``vocab.json`` + ``merges.txt`` suffice).
            Defaults to ``pretrained``; required with ``config``.
        max_length (int): Maximum tokens per caption including SOT/EOT;
            longer captions are truncated (EOT kept). Defaults to 77.
        with_proj (bool): Apply ``text_projection``. Defaults to True.
        freeze (bool): Freeze the encoder. Defaults to False.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self,
                 pretrained: Optional[str] = None,
                 config: Optional[dict] = None,
                 tokenizer: Optional[str] = None,
                 max_length: int = 77,
                 with_proj: bool = True,
                 freeze: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.model = load_clip_tower('text', pretrained, config)
        tok_dir = tokenizer if tokenizer is not None else pretrained
        if tok_dir is None:
            raise ValueError('CLIPTextEncoder built from `config` needs '
                             '`tokenizer` (a local tokenizer directory).')
        self.tokenizer = _load_tokenizer(
            tok_dir,
            'model.text_encoder.tokenizer'
            if tokenizer is not None else 'model.text_encoder.pretrained',
            clip=True)
        tcfg = self.model.config
        if not 0 < max_length <= tcfg.max_position_embeddings:
            raise ValueError(
                f'max_length={max_length} must be in [1, '
                f'{tcfg.max_position_embeddings}] (max_position_embeddings).')
        if len(self.tokenizer) > tcfg.vocab_size:
            raise ValueError(
                f'The tokenizer in {tok_dir!r} has {len(self.tokenizer)} '
                f'tokens but the text model only {tcfg.vocab_size}.')
        self.max_length = max_length
        self.with_proj = with_proj
        self.out_channels = tcfg.projection_dim if with_proj \
            else tcfg.hidden_size
        self._setup_common(freeze)

    def forward(self, texts: TextsOrTokens) -> torch.Tensor:
        """Encode captions.

        Args:
            texts (list[str] | dict): T captions, or their token batch
                (``input_ids`` and ``attention_mask``, (T, L)).

        Returns:
            Tensor: (T, out_channels).
        """
        tokens = self._tokens(texts)
        out = self.model.text_model(**tokens, return_dict=True)
        pooled = out.pooler_output
        if self.with_proj:
            pooled = self.model.text_projection(pooled)
        return pooled


@MODELS.register_module()
class HFTextEncoder(_HFTextBase):
    """BERT-style text encoder loaded with ``transformers.AutoModel``.

    Args:
        pretrained (str, optional): Local model directory.
        config (dict, optional): Config for random initialisation, e.g.
            ``dict(model_type='bert', hidden_size=32, ...)``. Give exactly
            one of ``pretrained`` / ``config``.
        tokenizer (str, optional): Local tokenizer directory (read with
            ``AutoTokenizer``). Defaults to ``pretrained``.
        pooling (str): ``'cls'`` (first token of the last layer), ``'mean'``
            (mean of the non-padding tokens) or ``'pooler'`` (the model's
            pooler output). Defaults to ``'cls'``.
        max_length (int): Maximum tokens per caption. Defaults to 64.
        freeze (bool): Freeze the encoder. Defaults to False.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self,
                 pretrained: Optional[str] = None,
                 config: Optional[dict] = None,
                 tokenizer: Optional[str] = None,
                 pooling: str = 'cls',
                 max_length: int = 64,
                 freeze: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        from transformers import AutoConfig, AutoModel
        if pooling not in ('cls', 'mean', 'pooler'):
            raise ValueError("pooling must be 'cls', 'mean' or 'pooler', got "
                             f'{pooling!r}.')
        if (pretrained is None) == (config is None):
            raise ValueError('Give exactly one of `pretrained` (a local '
                             'directory) or `config`.')
        if config is not None:
            config = dict(config)
            model_type = config.pop('model_type', None)
            if model_type is None:
                raise ValueError("HFTextEncoder `config` needs 'model_type' "
                                 "(e.g. 'bert').")
            self.model = AutoModel.from_config(
                AutoConfig.for_model(model_type, **config))
        else:
            self.model = hf_from_pretrained(
                AutoModel, pretrained, 'model.text_encoder.pretrained',
                'bert')
        if pooling != 'pooler' and getattr(self.model, 'pooler',
                                           None) is not None:
            # An unused pooler would break DDP without
            # find_unused_parameters.
            self.model.pooler = None
        tok_dir = tokenizer if tokenizer is not None else pretrained
        if tok_dir is None:
            raise ValueError('HFTextEncoder built from `config` needs '
                             '`tokenizer` (a local tokenizer directory).')
        self.tokenizer = _load_tokenizer(
            tok_dir, 'model.text_encoder.tokenizer'
            if tokenizer is not None else 'model.text_encoder.pretrained')
        self.pooling = pooling
        self.max_length = max_length
        self.out_channels = self.model.config.hidden_size
        self._setup_common(freeze)

    def forward(self, texts: TextsOrTokens) -> torch.Tensor:
        """Encode captions.

        Args:
            texts (list[str] | dict): T captions, or their token batch
                (``input_ids`` and ``attention_mask``, (T, L)).

        Returns:
            Tensor: (T, hidden_size).
        """
        tokens = self._tokens(texts)
        out = self.model(**tokens, return_dict=True)
        if self.pooling == 'pooler':
            return out.pooler_output
        hidden = out.last_hidden_state
        if self.pooling == 'cls':
            return hidden[:, 0]
        mask = tokens['attention_mask'].unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
