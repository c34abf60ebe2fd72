# Copyright (c) rsitr_mm contributors. All rights reserved.
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rsitr_mm.datasets.vocab import Vocabulary, load_or_build_vocab
from ...utils.validation import check_values
from ..utils.caption_tokens import (VocabCaptionTokenizer, is_token_batch,
                                    tokenize_captions)


@MODELS.register_module()
class BiGRUTextEncoder(BaseModule):
    """Word-embedding + (bi)GRU caption encoder (VSE++ style).

    Captions are tokenised with :func:`rsitr_mm.datasets.vocab.
    tokenize_caption` (lower case, punctuation dropped), mapped to indices
    (unknown words -> ``<unk>``; an empty caption becomes a single
    ``<unk>``), embedded, and run through a GRU as a packed sequence, so
    padding never changes a caption's embedding.

    Output (``pooling``):

    * ``'last'``: the final hidden states of the last GRU layer; with
      ``bidirectional`` the forward and backward states are averaged.
    * ``'mean'``: the mean over the caption's real time steps of the last
      layer's outputs (directions averaged).

    The vocabulary comes, in this order, from

    * ``vocab_file``, or the training captions of ``ann_files`` (Karpathy
      json; ``vocab_cache`` is reused only when it was built from the same
      file contents, see
      :func:`~rsitr_mm.datasets.vocab.load_or_build_vocab`): explicit
      paths, an override;
    * otherwise the training dataset the runner builds: the shipped configs
      name no path here, and
      :class:`~rsitr_mm.engine.hooks.TrainDataToModelHook` calls
      :meth:`setup_from_train_data` with the dataset's annotation files
      before training starts, so the dataset config is the one place paths
      live;
    * a checkpoint (``vocab_bytes``, below): test-only runs and
      ``init_retriever`` build the encoder without any path and get the
      vocabulary, and the embedding size, from the weights.

    Until one of these has run the vocabulary holds only ``<pad>`` and
    ``<unk>``; training it like that raises an error. The build is
    deterministic (frequency, then alphabetical order).

    The word list is part of the module's state (the uint8 buffer
    ``vocab_bytes``, UTF-8 words one a line), so a checkpoint is
    self-contained: loading it restores the
    vocabulary it was trained with (and resizes the embedding to it), with
    a warning when that differs from the one built from ``ann_files`` now.

    Args:
        vocab_file (str, optional): Vocabulary json (see
            :meth:`Vocabulary.load`).
        ann_files (list[str], optional): Karpathy json files.
        vocab_cache (str, optional): Json path to cache a built vocabulary.
        min_freq (int): Minimum count to keep a word when building.
            Defaults to 1.
        word_dim (int): Word embedding size. Defaults to 300.
        hidden_dim (int): GRU hidden size and output size. Defaults to 512.
        num_layers (int): GRU layers. Defaults to 1.
        bidirectional (bool): Bidirectional GRU. Defaults to True.
        dropout (float): Dropout on word embeddings and between GRU layers.
            Defaults to 0.
        pooling (str): ``'last'`` or ``'mean'``. Defaults to ``'last'``.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self,
                 vocab_file: Optional[str] = None,
                 ann_files: Optional[Sequence[str]] = None,
                 vocab_cache: Optional[str] = None,
                 min_freq: int = 1,
                 word_dim: int = 300,
                 hidden_dim: int = 512,
                 num_layers: int = 1,
                 bidirectional: bool = True,
                 dropout: float = 0.,
                 pooling: str = 'last',
                 init_cfg: Optional[dict] = None) -> None:
        check_values(
            'BiGRUTextEncoder',
            min_freq=(min_freq, 'int>=1'), word_dim=(word_dim, 'int>=1'),
            hidden_dim=(hidden_dim, 'int>=1'),
            num_layers=(num_layers, 'int>=1'), dropout=(dropout, '[0,1)'))
        super().__init__(init_cfg=init_cfg)
        if pooling not in ('last', 'mean'):
            raise ValueError(
                f"pooling must be 'last' or 'mean', got {pooling!r}.")
        self.min_freq = min_freq
        # explicit paths override the training dataset's annotations
        self.vocab_from_config = bool(vocab_file or ann_files or vocab_cache)
        self.vocab: Vocabulary = load_or_build_vocab(
            vocab_file, ann_files, vocab_cache,
            min_freq) if self.vocab_from_config else Vocabulary([])
        self.vocab_is_set = self.vocab_from_config
        # the word list is saved with the weights (a uint8 buffer, so the
        # state dict holds tensors only): checkpoints are self-contained
        self.register_buffer(
            'vocab_bytes', self._words_to_tensor(self.vocab.idx2word))
        self.embed = nn.Embedding(
            len(self.vocab), word_dim, padding_idx=self.vocab.pad_id)
        self.drop = nn.Dropout(dropout)
        self.gru = nn.GRU(
            word_dim,
            hidden_dim,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.)
        self.num_directions = 2 if bidirectional else 1
        self.pooling = pooling
        self.out_channels = hidden_dim
        nn.init.uniform_(self.embed.weight, -0.1, 0.1)
        with torch.no_grad():
            self.embed.weight[self.vocab.pad_id].zero_()

    @staticmethod
    def _words_to_tensor(words: List[str]) -> torch.Tensor:
        """The word list as a uint8 tensor (UTF-8, one word a line)."""
        data = '\n'.join(words).encode('utf-8')
        return torch.tensor(list(data), dtype=torch.uint8)

    @staticmethod
    def _tensor_to_words(data: torch.Tensor) -> List[str]:
        return bytes(data.cpu().tolist()).decode('utf-8').split('\n')

    def _load_from_state_dict(self, state_dict, prefix, local_metadata,
                              strict, missing_keys, unexpected_keys,
                              error_msgs) -> None:
        """Restore the checkpoint's vocabulary (``vocab_bytes``) before the
        weights, resizing the embedding when it has another size."""
        data = state_dict.get(prefix + 'vocab_bytes')
        if isinstance(data, torch.Tensor) and data.dtype == torch.uint8:
            words = Vocabulary(self._tensor_to_words(data)).idx2word
            if words != self.vocab.idx2word:
                if self.vocab_is_set:
                    import warnings
                    warnings.warn(
                        'BiGRUTextEncoder: the checkpoint was trained with '
                        f'another vocabulary ({len(words)} words, the '
                        f'annotation files now give {len(self.vocab)}); '
                        "using the checkpoint's.")
                self._set_vocab(Vocabulary(words))
            self.vocab_is_set = True
            self.vocab_bytes = data.detach().clone().to(
                self.vocab_bytes.device)
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def _set_vocab(self, vocab: Vocabulary) -> bool:
        """Use ``vocab``; resize the embedding in place when its size
        changes (the ``Parameter`` object is kept, so an optimizer built
        already still holds it; new rows start as in ``__init__``).

        Returns:
            bool: Whether the embedding changed size.
        """
        self.vocab = vocab
        weight = self.embed.weight
        self.vocab_bytes = self._words_to_tensor(vocab.idx2word).to(
            self.vocab_bytes.device)
        if len(vocab) == self.embed.num_embeddings:
            return False
        new = torch.empty(len(vocab), self.embed.embedding_dim,
                          device=weight.device, dtype=weight.dtype)
        nn.init.uniform_(new, -0.1, 0.1)
        new[vocab.pad_id].zero_()
        weight.data = new
        if weight.grad is not None:
            weight.grad = None
        self.embed.num_embeddings = len(vocab)
        self.embed.padding_idx = vocab.pad_id
        return True

    def checkpoint_sized_keys(self) -> List[str]:
        """State keys whose shape a checkpoint decides (the vocabulary is
        not set yet); see :func:`rsitr_mm.utils.safe_load.
        state_dict_mismatch`."""
        return [] if self.vocab_is_set else ['vocab_bytes', 'embed.weight']

    @property
    def data_from_config(self) -> bool:
        """Whether the config named the vocabulary's source, so that
        :meth:`setup_from_train_data` needs no training files."""
        return self.vocab_from_config

    def setup_from_train_data(self, ann_files: Sequence[str]) -> bool:
        """Build the vocabulary from the training dataset's annotation files
        (train split), unless the config named a vocabulary source.

        Called by :class:`~rsitr_mm.engine.hooks.TrainDataToModelHook`
        before training (and before a checkpoint is resumed, which then
        restores the checkpoint's vocabulary).

        Args:
            ann_files (Sequence[str]): Karpathy json files of the training
                dataset.

        Returns:
            bool: Whether a parameter changed shape.
        """
        if self.vocab_from_config:
            return False
        self.vocab_is_set = True
        return self._set_vocab(
            Vocabulary.from_karpathy(list(ann_files), self.min_freq))

    @property
    def caption_tokenizer(self) -> VocabCaptionTokenizer:
        """The host-side tokenizer (the vocabulary, no weights) the data
        pipeline uses."""
        return VocabCaptionTokenizer(self.vocab)

    def encode_ids(self, texts: List[str]):
        """Map captions to a padded index tensor (the longest caption
        rounded up to a multiple of 8), with :func:`~rsitr_mm.models.utils.
        caption_tokens.tokenize_captions`.

        Returns:
            tuple: ``ids`` (T, L) long on the module's device and
            ``lengths`` (T, ) long on the CPU.
        """
        if isinstance(texts, str) or not texts:
            raise TypeError('BiGRUTextEncoder.forward expects a non-empty '
                            'list of strings.')
        batch = tokenize_captions(self.caption_tokenizer, texts,
                                  self.embed.weight.device,
                                  'BiGRUTextEncoder')
        return batch['input_ids'], batch['lengths']

    def forward(self, texts: Union[List[str], Dict[str, torch.Tensor]]
                ) -> torch.Tensor:
        """Encode captions.

        Args:
            texts (list[str] | dict): T captions, or their token batch:
                ``input_ids`` (T, L) long and ``lengths`` (T,) long on the
                host (``attention_mask`` is read when ``lengths`` is
                missing, at the cost of a device->host copy).

        Returns:
            Tensor: (T, hidden_dim).
        """
        if self.training and not self.vocab_is_set:
            raise RuntimeError(
                'BiGRUTextEncoder has no vocabulary: train through the '
                "Runner with custom_hooks=[dict(type='TrainDataToModelHook')]"
                ' (configs/_base_/default_runtime.py has it), which builds it '
                'from the training dataset, or set '
                'model.text_encoder.ann_files / vocab_file, or load a '
                'checkpoint.')
        if is_token_batch(texts):
            ids = texts['input_ids']
            lengths = texts.get('lengths')
            if lengths is None:
                lengths = texts['attention_mask'].sum(1)
            if lengths.device.type != 'cpu':
                lengths = lengths.cpu()
        else:
            ids, lengths = self.encode_ids(texts)
        x = self.drop(self.embed(ids))
        packed = pack_padded_sequence(
            x, lengths, batch_first=True, enforce_sorted=False)
        out, h_n = self.gru(packed)
        if self.pooling == 'last':
            # h_n: (num_layers * num_directions, T, H); keep the last layer.
            return h_n[-self.num_directions:].mean(0)
        out, _ = pad_packed_sequence(
            out, batch_first=True, total_length=ids.shape[1])
        out = out.view(out.shape[0], out.shape[1], self.num_directions,
                       -1).mean(2)
        lengths = lengths.to(ids.device, non_blocking=True)
        mask = torch.arange(ids.shape[1], device=ids.device)[None] \
            < lengths[:, None]
        mask = mask.unsqueeze(-1).to(out.dtype)
        return (out * mask).sum(1) / lengths.to(out)[:, None]
