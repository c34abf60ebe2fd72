# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Caption tokenisation shared by the data pipeline and the model.

A text encoder hands out a small, picklable *caption tokenizer* (the
``transformers`` tokenizer or the BiGRU :class:`Vocabulary`, no weights):

* in training, :class:`~rsitr_mm.datasets.transforms.PrepareCaptionData`
  calls its :meth:`~CaptionTokenizer.encode` per caption in the data-loader
  workers and :meth:`~CaptionTokenizer.collate` pads the batch there, so the
  model's forward receives ``input_ids`` / ``attention_mask`` tensors;
* on the inference/API path the encoder is given strings and calls
  :func:`tokenize_captions`, i.e. the same ``encode`` and ``collate``.

Padding goes to the next multiple of ``pad_multiple`` (8) tokens, capped at
``max_length``, so a training run sees a handful of shapes (what
``torch.compile`` and cuDNN/cuBLAS autotuning want). The encoders mask the
padding (attention mask; packed sequences for the GRU), so the bucket
length does not change a caption's embedding beyond float rounding.
"""
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

PAD_MULTIPLE = 8


def bucket_length(longest: int, multiple: int = PAD_MULTIPLE,
                  max_length: Optional[int] = None) -> int:
    """``longest`` rounded up to a multiple of ``multiple`` (at most
    ``max_length`` when given, at least 1)."""
    length = max(1, -(-int(longest) // multiple) * multiple)
    if max_length is not None:
        length = min(length, max(int(max_length), int(longest)))
    return length


class CaptionTokenizer:
    """Base class: caption -> token ids, and padding of a batch.

    Subclasses implement :meth:`encode`; :meth:`collate` is shared.

    Args:
        pad_id (int): Id written into padding positions.
        max_length (int, optional): Longest sequence a caption may have
            (padding never exceeds it).
        pad_multiple (int): Bucket width. Defaults to 8.
    """

    def __init__(self, pad_id: int, max_length: Optional[int] = None,
                 pad_multiple: int = PAD_MULTIPLE) -> None:
        self.pad_id = int(pad_id)
        self.max_length = max_length
        self.pad_multiple = int(pad_multiple)

    def encode(self, text: str) -> np.ndarray:
        """Token ids (L,) int64 of one caption (truncated, not padded)."""
        raise NotImplementedError

    def collate(self, seqs: Sequence[np.ndarray]) -> Dict[str, torch.Tensor]:
        """Pad ``seqs`` to one bucket.

        Args:
            seqs (Sequence[np.ndarray]): T id sequences.

        Returns:
            dict: ``input_ids`` (T, L) long, ``attention_mask`` (T, L) long
            and ``lengths`` (T,) long, on the host; ``L`` is the longest
            sequence rounded up to ``pad_multiple`` (capped at
            ``max_length``).
        """
        lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64,
                              count=len(seqs))
        width = bucket_length(lengths.max() if len(seqs) else 1,
                              self.pad_multiple, self.max_length)
        ids = np.full((len(seqs), width), self.pad_id, dtype=np.int64)
        for i, s in enumerate(seqs):
            ids[i, :len(s)] = s
        mask = (np.arange(width)[None, :] < lengths[:, None]).astype(
            np.int64)
        return dict(input_ids=torch.from_numpy(ids),
                    attention_mask=torch.from_numpy(mask),
                    lengths=torch.from_numpy(lengths))

    # the preparer protocol of PrepareCaptionData
    def prepare_sample(self, sample) -> Dict[str, np.ndarray]:
        """``input_ids`` of a training sample's caption (``sample.text``)."""
        return dict(input_ids=self.encode(sample.text))

    def collate_samples(self, items: Sequence[dict]
                        ) -> Dict[str, torch.Tensor]:
        """The padded batch (:meth:`collate`) of prepared samples."""
        return self.collate([item['input_ids'] for item in items])


class HFCaptionTokenizer(CaptionTokenizer):
    """A ``transformers`` tokenizer (CLIP BPE, BERT WordPiece): special
    tokens added, truncated to ``max_length`` (the end token kept)."""

    def __init__(self, tokenizer, max_length: int,
                 pad_multiple: int = PAD_MULTIPLE) -> None:
        pad_id = tokenizer.pad_token_id
        super().__init__(0 if pad_id is None else pad_id, max_length,
                         pad_multiple)
        self.tokenizer = tokenizer

    def encode(self, text: str) -> np.ndarray:
        ids = self.tokenizer(
            text, truncation=True, max_length=self.max_length)['input_ids']
        return np.asarray(ids, dtype=np.int64)


class VocabCaptionTokenizer(CaptionTokenizer):
    """The BiGRU word vocabulary (an empty caption becomes ``<unk>``)."""

    def __init__(self, vocab, pad_multiple: int = PAD_MULTIPLE) -> None:
        super().__init__(vocab.pad_id, None, pad_multiple)
        self.vocab = vocab

    def encode(self, text: str) -> np.ndarray:
        return np.asarray(self.vocab.encode(text) or [self.vocab.unk_id],
                          dtype=np.int64)


def check_texts(texts, owner: str) -> List[str]:
    """``texts`` as a non-empty list of strings, else one clear error."""
    if isinstance(texts, str):
        raise TypeError(f'{owner}.forward expects a list of strings, got a '
                        'single str; wrap it in a list.')
    texts = list(texts)
    if not texts or not all(isinstance(t, str) for t in texts):
        raise TypeError(f'{owner}.forward expects a non-empty list of '
                        'strings.')
    return texts


def tokenize_captions(tokenizer: CaptionTokenizer, texts: Sequence[str],
                      device: Optional[torch.device] = None,
                      owner: str = 'text encoder') -> Dict[str, torch.Tensor]:
    """Tokenise and pad captions: the one tokenisation function of both the
    data pipeline (``encode`` per caption in the workers, ``collate`` per
    batch) and the string path of the encoders (both here).

    Args:
        tokenizer (CaptionTokenizer): The encoder's caption tokenizer.
        texts (Sequence[str]): T captions.
        device (torch.device, optional): Where ``input_ids`` and
            ``attention_mask`` go; ``lengths`` stays on the host.
        owner (str): Name used in the error for bad input.

    Returns:
        dict: see :meth:`CaptionTokenizer.collate`.
    """
    texts = check_texts(texts, owner)
    batch = tokenizer.collate([tokenizer.encode(t) for t in texts])
    if device is not None:
        batch = {k: v if k == 'lengths' else v.to(device)
                 for k, v in batch.items()}
    return batch


def is_token_batch(texts) -> bool:
    """Whether ``texts`` is an already tokenised batch (a mapping with
    ``input_ids``) rather than a list of strings."""
    return isinstance(texts, dict) and 'input_ids' in texts
