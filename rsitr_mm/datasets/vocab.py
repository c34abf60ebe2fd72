# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Caption tokenisation and word vocabularies for word-level text encoders.

Tokenisation uses nltk's data-free ``RegexpTokenizer``: the caption is
lower-cased and split into runs of ASCII letters and digits, so punctuation
is dropped (``"A plane, parked."`` -> ``['a', 'plane', 'parked']``). No nltk
data package is needed.
"""
import json
import os.path as osp
import warnings
from collections import Counter
from typing import Dict, Iterable, List, Optional, Sequence

from ..utils.fileio import atomic_write_text

PAD_TOKEN = '<pad>'
UNK_TOKEN = '<unk>'
_TOKEN_PATTERN = r'[a-z0-9]+'
_TOKENIZER = None


def tokenize_caption(text: str) -> List[str]:
    """Split a caption into lower-case words without punctuation.

    Args:
        text (str): A caption.

    Returns:
        list[str]: The words, e.g. ``"Two planes, near a runway."`` ->
        ``['two', 'planes', 'near', 'a', 'runway']``.
    """
    global _TOKENIZER
    if _TOKENIZER is None:
        from nltk.tokenize import RegexpTokenizer
        _TOKENIZER = RegexpTokenizer(_TOKEN_PATTERN)
    if not isinstance(text, str):
        raise TypeError(f'A caption must be a str, got {type(text).__name__}.')
    return _TOKENIZER.tokenize(text.lower())


def read_karpathy_captions(
    ann_file: str, splits: Sequence[str] = ('train', )) -> List[str]:
    """Raw captions of the given splits of a Karpathy-format json file.

    Args:
        ann_file (str): Annotation file with an ``images`` list whose items
            have ``split`` and ``sentences[*].raw``.
        splits (Sequence[str]): Splits to read. Defaults to ``('train', )``.

    Returns:
        list[str]: Captions in file order.
    """
    with open(ann_file, encoding='utf-8') as f:
        data = json.load(f)
    if not isinstance(data, dict) or 'images' not in data:
        raise ValueError(f'{ann_file} is not a Karpathy-format annotation '
                         "file (no top-level 'images' list).")
    captions = []
    for i, img in enumerate(data['images']):
        if img.get('split') not in splits:
            continue
        for sent in img.get('sentences', []):
            if 'raw' not in sent:
                raise ValueError(f"{ann_file}: images[{i}] has a sentence "
                                 "without a 'raw' field.")
            captions.append(sent['raw'])
    return captions


#: Bump when :func:`tokenize_caption` changes (invalidates caches).
TOKENIZER_VERSION = 1


class Vocabulary:
    """A word <-> index mapping with ``<pad>`` = 0 and ``<unk>`` = 1.

    Args:
        words (Iterable[str]): Words in index order. ``<pad>`` and ``<unk>``
            are put first when missing.
    """

    def __init__(self, words: Iterable[str]) -> None:
        words = list(words)
        for special in (UNK_TOKEN, PAD_TOKEN):
            if special in words:
                words.remove(special)
            words.insert(0, special)
        if len(set(words)) != len(words):
            raise ValueError('Vocabulary words must be unique.')
        self.idx2word: List[str] = words
        self.word2idx: Dict[str, int] = {w: i for i, w in enumerate(words)}

    @property
    def pad_id(self) -> int:
        return self.word2idx[PAD_TOKEN]

    @property
    def unk_id(self) -> int:
        return self.word2idx[UNK_TOKEN]

    def __len__(self) -> int:
        return len(self.idx2word)

    def __contains__(self, word: str) -> bool:
        return word in self.word2idx

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocabulary) and \
            self.idx2word == other.idx2word

    def __call__(self, word: str) -> int:
        """Index of ``word`` (``<unk>`` for unknown words)."""
        return self.word2idx.get(word, self.unk_id)

    def encode(self, text: str) -> List[int]:
        """Tokenise a caption with :func:`tokenize_caption` and map the words
        to indices."""
        return [self(w) for w in tokenize_caption(text)]

    @classmethod
    def build(cls, captions: Iterable[str], min_freq: int = 1) -> 'Vocabulary':
        """Build a vocabulary from captions, deterministically.

        Words with at least ``min_freq`` occurrences are kept, ordered by
        decreasing frequency and then alphabetically, after ``<pad>`` and
        ``<unk>``.
        """
        counter = Counter()
        for caption in captions:
            counter.update(tokenize_caption(caption))
        kept = [w for w, c in counter.items() if c >= min_freq]
        kept.sort(key=lambda w: (-counter[w], w))
        return cls(kept)

    @classmethod
    def from_karpathy(
        cls,
        ann_files: Sequence[str],
        min_freq: int = 1,
        splits: Sequence[str] = ('train', )) -> 'Vocabulary':
        """Build from the training captions of Karpathy-format files."""
        if isinstance(ann_files, str):
            ann_files = [ann_files]
        captions = []
        for ann_file in ann_files:
            captions += read_karpathy_captions(ann_file, splits)
        if not captions:
            raise ValueError(f'No {list(splits)} captions found in '
                             f'{list(ann_files)}.')
        return cls.build(captions, min_freq)

    def save(self, path: str) -> None:
        """Write ``{"idx2word": [...]}`` as json (atomically)."""
        atomic_write_text(
            json.dumps({'idx2word': self.idx2word}, ensure_ascii=False),
            path)

    @classmethod
    def load(cls, path: str) -> 'Vocabulary':
        """Read a vocabulary json file.

        Accepted layouts: ``{"idx2word": [...]}`` (ours), a list of words,
        or ``{"word2idx": {word: index}}`` / a plain ``{word: index}``
        mapping (the layout of other retrieval codebases). Missing
        ``<pad>`` / ``<unk>`` entries are added in front.
        """
        with open(path, encoding='utf-8') as f:
            data = json.load(f)
        if isinstance(data, dict) and 'idx2word' in data and isinstance(
                data['idx2word'], list):
            return cls(data['idx2word'])
        if isinstance(data, list):
            return cls(data)
        if isinstance(data, dict):
            mapping = data.get('word2idx', data)
            if all(isinstance(v, int) for v in mapping.values()):
                return cls(sorted(mapping, key=mapping.get))
        raise ValueError(
            f'{path}: expected {{"idx2word": [...]}}, a list of words or a '
            '{word: index} mapping.')


def vocab_inputs_key(ann_files: Sequence[str], min_freq: int,
                     splits: Sequence[str] = ('train', )) -> str:
    """sha256 of everything a built vocabulary depends on: the bytes of the
    annotation files (in order), ``min_freq``, the splits and the
    tokeniser version."""
    import hashlib
    h = hashlib.sha256()
    h.update(json.dumps([TOKENIZER_VERSION, int(min_freq),
                         list(splits)]).encode())
    for path in ([ann_files] if isinstance(ann_files, str) else ann_files):
        with open(path, 'rb') as f:
            for block in iter(lambda: f.read(1 << 20), b''):
                h.update(block)
        h.update(b'\0')
    return h.hexdigest()


def load_or_build_vocab(vocab_file: Optional[str] = None,
                        ann_files: Optional[Sequence[str]] = None,
                        vocab_cache: Optional[str] = None,
                        min_freq: int = 1) -> Vocabulary:
    """Get a vocabulary from a file, a cache or training captions.

    Order: ``vocab_file`` if given; else build from ``ann_files`` (train
    split), reusing ``vocab_cache`` only when it was built from the same
    inputs (its ``inputs_sha256`` equals :func:`vocab_inputs_key` of the
    files now): a stale cache (a caption changed, another annotation file)
    is rebuilt, never reused silently. A cache that cannot be written (a
    read-only data folder) is skipped with a warning. ``vocab_cache``
    alone (no ``ann_files``) is read as it is.
    """
    if vocab_file is not None:
        if not osp.isfile(vocab_file):
            raise FileNotFoundError(f'vocab_file {vocab_file} does not exist.')
        return Vocabulary.load(vocab_file)
    if not ann_files:
        if vocab_cache is not None and osp.isfile(vocab_cache):
            return Vocabulary.load(vocab_cache)
        raise ValueError('Give `vocab_file`, an existing `vocab_cache` or '
                         '`ann_files` to build the vocabulary from.')
    key = vocab_inputs_key(ann_files, min_freq)
    if vocab_cache is not None and osp.isfile(vocab_cache):
        try:
            with open(vocab_cache, encoding='utf-8') as f:
                cached = json.load(f)
        except (OSError, ValueError):
            cached = None
        if isinstance(cached, dict) and cached.get('inputs_sha256') == key:
            return Vocabulary(cached['idx2word'])
        warnings.warn(f'vocab_cache {vocab_cache} was built from other '
                      'inputs (or has no inputs_sha256); rebuilding it from '
                      f'{list(ann_files)}.')
    vocab = Vocabulary.from_karpathy(ann_files, min_freq)
    if vocab_cache is not None:
        try:
            atomic_write_text(
                json.dumps({'idx2word': vocab.idx2word,
                            'inputs_sha256': key}, ensure_ascii=False),
                vocab_cache)
        except OSError as err:
            warnings.warn(f'could not write vocab_cache {vocab_cache} '
                          f'({err}); the vocabulary is not cached.')
    return vocab
