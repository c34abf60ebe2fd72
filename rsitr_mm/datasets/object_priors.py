# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Per-image object-noun priors from captions (the OSFCM semantic prior).

The OSDPM paper counts how often object-category nouns occur in the captions
of each image and uses the frequent ones as a semantic prior for that image.
The paper gives no code; this module is our reading of that step:

1. Each caption is lower-cased and split with nltk's data-free
   ``RegexpTokenizer`` (no nltk corpus or model is ever needed).
2. Tokens are matched greedily (longest first) against a curated
   remote-sensing lexicon (``rs_object_lexicon.txt``), so multi-word terms
   such as ``storage tank`` or ``parking lot`` become one noun, plurals are
   mapped by a light rule-based singulariser and synonyms / misspellings by
   the lexicon's variant table (``planes -> airplane``).
3. A noun is counted at most once per caption, so with 5 captions an image's
   count for a noun lies in ``[0, 5]``.
4. The vocabulary keeps the ``top_k`` nouns with the highest document
   frequency (number of images mentioning them) over the chosen split; ties
   are broken alphabetically.
5. ``prior = counts / counts.sum()`` per image; an image with no vocabulary
   noun gets an all-zero row.

Everything is deterministic; results can be cached to an ``.npz`` keyed by a
hash of the inputs (annotation file contents, split, ``top_k``, lexicon).
"""
import hashlib
import io
import json
import os.path as osp
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import (Callable, Dict, Iterable, List, Mapping, Optional,
                    Sequence, Union)

import numpy as np

from ..utils.fileio import atomic_write_bytes

#: The lexicon shipped with the package.
DEFAULT_LEXICON_FILE = osp.join(
    osp.dirname(osp.abspath(__file__)), 'rs_object_lexicon.txt')

#: Bumped whenever the prior-building rules change (invalidates caches).
PRIORS_FORMAT_VERSION = 1

_TOKEN_PATTERN = r'[a-z]+'

LexiconLike = Union[None, str, Mapping[str, Iterable[str]], Iterable[str]]


@dataclass
class ObjectLexicon:
    """A noun lexicon: canonical terms and the surface forms mapped to them.

    Attributes:
        terms (list[str]): Canonical nouns (singular, lower case; multi-word
            terms are space separated).
        variants (dict[str, str]): Surface form (lower-case words joined by a
            single space) -> canonical noun. Every canonical noun maps to
            itself.
        max_words (int): Number of words of the longest surface form.
    """
    terms: List[str]
    variants: Dict[str, str]
    max_words: int

    def digest(self) -> str:
        """A stable hash of the lexicon, used in cache keys."""
        payload = json.dumps(sorted(self.variants.items()))
        return hashlib.sha1(payload.encode('utf-8')).hexdigest()


def _clean_term(term: str) -> str:
    return ' '.join(str(term).lower().split())


def _parse_lexicon_file(path: str) -> Dict[str, List[str]]:
    if not osp.isfile(path):
        raise FileNotFoundError(f'Object lexicon file not found: {path!r}.')
    entries: Dict[str, List[str]] = {}
    with open(path, encoding='utf-8') as f:
        for lineno, line in enumerate(f, 1):
            line = line.split('#', 1)[0].strip()
            if not line:
                continue
            head, _, tail = line.partition(':')
            head = _clean_term(head)
            if not head:
                raise ValueError(f'{path}:{lineno}: expected '
                                 f'"noun" or "noun: variant, ...", got '
                                 f'{line!r}.')
            variants = [_clean_term(v) for v in tail.split(',') if v.strip()]
            entries.setdefault(head, []).extend(variants)
    return entries


def load_lexicon(lexicon: LexiconLike = None,
                 extra_nouns: Iterable[str] = ()) -> ObjectLexicon:
    """Load an object-noun lexicon.

    Args:
        lexicon (None | str | Mapping | Iterable[str]): ``None`` for the
            shipped remote-sensing lexicon, a path to a file in the same
            format (``noun: variant, variant``), a mapping
            ``{noun: [variants]}`` or a plain list of nouns.
        extra_nouns (Iterable[str]): Nouns added to the lexicon (e.g. from a
            config). An entry may carry variants as ``'noun: v1, v2'``.

    Returns:
        ObjectLexicon: The parsed lexicon.
    """
    if lexicon is None:
        entries = _parse_lexicon_file(DEFAULT_LEXICON_FILE)
    elif isinstance(lexicon, str):
        entries = _parse_lexicon_file(lexicon)
    elif isinstance(lexicon, Mapping):
        entries = {
            _clean_term(k): [_clean_term(v) for v in vs]
            for k, vs in lexicon.items()
        }
    else:
        entries = {_clean_term(k): [] for k in lexicon}
    if isinstance(extra_nouns, str):
        extra_nouns = [extra_nouns]
    for item in extra_nouns:
        head, _, tail = str(item).partition(':')
        head = _clean_term(head)
        if head:
            entries.setdefault(head, []).extend(
                _clean_term(v) for v in tail.split(',') if v.strip())

    variants: Dict[str, str] = {}
    # Canonical forms first so that they always win over variants.
    for term in entries:
        variants[term] = term
    for term, forms in entries.items():
        for form in forms:
            if form and form not in variants:
                variants[form] = term
    max_words = max((len(k.split()) for k in variants), default=1)
    return ObjectLexicon(
        terms=list(entries), variants=variants, max_words=max_words)


def singular_candidates(word: str) -> List[str]:
    """Candidate singular forms of an English word, most literal first.

    The caller picks the first candidate that is a lexicon entry, so the
    rules may over-generate (``waves`` yields ``waf`` as well as ``wave``).

    Args:
        word (str): A lower-case word.

    Returns:
        list[str]: ``word`` itself followed by candidate singulars.
    """
    cands = [word]
    if len(word) <= 3 or word.endswith(('ss', 'us', 'is')):
        return cands
    if word.endswith('ies'):
        cands.append(word[:-3] + 'y')
    if word.endswith('ves'):
        cands += [word[:-3] + 'f', word[:-3] + 'fe']
    if word.endswith('es'):
        cands.append(word[:-2])
    if word.endswith('s'):
        cands.append(word[:-1])
    return cands


def _get_tokenizer() -> Callable[[str], List[str]]:
    # RegexpTokenizer needs no nltk data (unlike word_tokenize).
    from nltk.tokenize import RegexpTokenizer
    return RegexpTokenizer(_TOKEN_PATTERN).tokenize


def _get_pos_tagger() -> Optional[Callable]:
    """nltk's POS tagger if its model is already on disk, else ``None``.

    Never downloads anything.
    """
    try:
        import nltk
        for name in ('taggers/averaged_perceptron_tagger_eng',
                     'taggers/averaged_perceptron_tagger'):
            try:
                nltk.data.find(name)
            except LookupError:
                continue
            from nltk.tag import pos_tag

            def tag(tokens):
                return [t for _, t in pos_tag(tokens)]

            tag(['a', 'test'])  # fails here, not mid-build, if unusable
            return tag
    except Exception:  # noqa: BLE001 - any failure means "no tagger"
        return None
    return None


def extract_object_nouns(caption: str,
                         lexicon: ObjectLexicon,
                         tokenizer: Optional[Callable] = None,
                         pos_tags: Optional[Callable] = None) -> List[str]:
    """Canonical lexicon nouns mentioned in one caption, in order.

    Args:
        caption (str): Raw caption text.
        lexicon (ObjectLexicon): The lexicon to match against.
        tokenizer (Callable, optional): ``str -> list[str]``; defaults to
            nltk's ``RegexpTokenizer(r'[a-z]+')``.
        pos_tags (Callable, optional): ``list[str] -> list[str]`` of Penn
            tags. When given, single-word matches whose tag is not a noun
            (``NN*``) are dropped.

    Returns:
        list[str]: Canonical nouns (a noun repeats if mentioned repeatedly).
    """
    tokenizer = tokenizer or _get_tokenizer()
    tokens = tokenizer(caption.lower())
    tags = pos_tags(tokens) if pos_tags is not None and tokens else None
    variants = lexicon.variants
    nouns: List[str] = []
    i = 0
    while i < len(tokens):
        matched = 0
        for n in range(min(lexicon.max_words, len(tokens) - i), 0, -1):
            prefix = ' '.join(tokens[i:i + n - 1])
            for last in singular_candidates(tokens[i + n - 1]):
                phrase = f'{prefix} {last}' if prefix else last
                if phrase in variants:
                    if n == 1 and tags is not None and \
                            not tags[i].startswith('NN'):
                        break
                    nouns.append(variants[phrase])
                    matched = n
                    break
            if matched:
                break
        i += matched or 1
    return nouns


@dataclass
class ObjectPriors:
    """Per-image object-noun priors.

    Attributes:
        vocab (list[str]): The K vocabulary nouns, by decreasing document
            frequency.
        filenames (list[str]): Image file names (basenames), one per row.
        priors (np.ndarray): (num_images, K) float32; each row sums to 1, or
            is all zero when the image's captions mention no vocabulary noun.
        counts (np.ndarray): (num_images, K) int; number of captions of the
            image that mention the noun (each caption counts once).
        doc_freq (np.ndarray): (K,) int; number of images mentioning a noun.
        sources (np.ndarray): (num_images,) int; index of the annotation file
            each image came from.
        key (str): Hash of the inputs that produced these priors.
        from_cache (bool): Whether they were loaded from a cache file.
    """
    vocab: List[str]
    filenames: List[str]
    priors: np.ndarray
    counts: np.ndarray
    doc_freq: np.ndarray
    sources: np.ndarray = None
    key: str = ''
    from_cache: bool = False
    _index: Dict[str, int] = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        if self.sources is None:
            self.sources = np.zeros(len(self.filenames), dtype=np.int64)
        if self.priors.shape != (len(self.filenames), len(self.vocab)):
            raise ValueError(
                f'ObjectPriors: priors has shape {self.priors.shape}, '
                f'expected ({len(self.filenames)}, {len(self.vocab)}).')

    @property
    def num_images(self) -> int:
        return len(self.filenames)

    @property
    def num_nouns(self) -> int:
        return len(self.vocab)

    def index(self, filename: str) -> int:
        """Row of an image by file name (matched by basename); -1 if absent.

        When several annotation files hold the same basename, the first one
        wins (a warning is issued once when the index is built).
        """
        if self._index is None:
            index: Dict[str, int] = {}
            dups = 0
            for i, name in enumerate(self.filenames):
                if name in index:
                    dups += 1
                    continue
                index[name] = i
            if dups:
                warnings.warn(
                    f'ObjectPriors: {dups} image basenames occur more than '
                    'once (several annotation files?); the first occurrence '
                    'is used.')
            self._index = index
        return self._index.get(osp.basename(str(filename)), -1)

    def prior_of(self, filenames: Sequence[str]) -> np.ndarray:
        """(len(filenames), K) priors; unknown images get zero rows."""
        out = np.zeros((len(filenames), self.num_nouns), dtype=np.float32)
        for j, name in enumerate(filenames):
            i = self.index(name)
            if i >= 0:
                out[j] = self.priors[i]
        return out

    def dominant(self, rows: Optional[np.ndarray] = None) -> np.ndarray:
        """Index of the dominant noun per row, -1 for an all-zero row.

        Args:
            rows (np.ndarray, optional): (N, K) priors; defaults to all.
        """
        rows = self.priors if rows is None else np.asarray(rows)
        out = rows.argmax(axis=1).astype(np.int64)
        out[rows.sum(axis=1) <= 0] = -1
        return out

    def top_nouns(self, row: int, n: int = 5) -> List[str]:
        """The ``n`` most frequent nouns of image ``row`` (non-zero only)."""
        counts = self.counts[row]
        order = sorted(
            np.nonzero(counts)[0], key=lambda k: (-counts[k], self.vocab[k]))
        return [self.vocab[k] for k in order[:n]]

    def save(self, path: str) -> None:
        """Save to an ``.npz`` file (no pickled objects)."""
        buf = io.BytesIO()
        np.savez(
            buf,
            vocab=np.array(self.vocab, dtype=str),
            filenames=np.array(self.filenames, dtype=str),
            priors=self.priors.astype(np.float32),
            counts=self.counts.astype(np.int64),
            doc_freq=self.doc_freq.astype(np.int64),
            sources=self.sources.astype(np.int64),
            key=np.array(self.key),
            version=np.array(PRIORS_FORMAT_VERSION))
        atomic_write_bytes(buf.getvalue(), path)

    @classmethod
    def load(cls, path: str) -> 'ObjectPriors':
        """Load priors saved by :meth:`save`."""
        if not osp.isfile(path):
            raise FileNotFoundError(f'Object priors file not found: {path!r}')
        with np.load(path, allow_pickle=False) as data:
            missing = {'vocab', 'filenames', 'priors', 'counts'} - set(
                data.files)
            if missing:
                raise ValueError(f'{path}: not an object-priors file; '
                                 f'missing arrays {sorted(missing)}.')
            return cls(
                vocab=[str(v) for v in data['vocab']],
                filenames=[str(v) for v in data['filenames']],
                priors=data['priors'].astype(np.float32),
                counts=data['counts'].astype(np.int64),
                doc_freq=data['doc_freq'].astype(np.int64)
                if 'doc_freq' in data.files else
                (data['counts'] > 0).sum(0),
                sources=data['sources'] if 'sources' in data.files else None,
                key=str(data['key']) if 'key' in data.files else '',
                from_cache=True)


def _file_sha1(path: str) -> str:
    h = hashlib.sha1()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def load_caption_images(ann_file: str,
                        split: Union[None, str, Sequence[str]] = 'train'
                        ) -> List[dict]:
    """Images of a Karpathy-format json with their raw captions.

    Args:
        ann_file (str): Path of the json (``{'images': [{'filename',
            'split', 'sentences': [{'raw' or 'tokens'}]}]}``).
        split (None | str | Sequence[str]): Keep images of these splits;
            ``None`` keeps all.

    Returns:
        list[dict]: ``dict(filename, split, captions, info)`` per image, where
        ``info`` is the image's original json entry.
    """
    if not osp.isfile(ann_file):
        raise FileNotFoundError(f'Annotation file not found: {ann_file!r}')
    with open(ann_file, encoding='utf-8') as f:
        data = json.load(f)
    if not isinstance(data, dict) or 'images' not in data:
        raise ValueError(f'{ann_file}: expected a Karpathy-format json with '
                         'an "images" list.')
    splits = None if split is None else (
        {split} if isinstance(split, str) else set(split))
    out = []
    for idx, img in enumerate(data['images']):
        if splits is not None and img.get('split') not in splits:
            continue
        if 'filename' not in img:
            raise ValueError(f'{ann_file}: images[{idx}] has no "filename".')
        caps = []
        for sent in img.get('sentences', []):
            raw = sent.get('raw')
            if raw is None:
                raw = ' '.join(sent.get('tokens', []))
            caps.append(str(raw))
        out.append(
            dict(
                filename=osp.basename(img['filename']),
                split=img.get('split'),
                captions=caps,
                info=img))
    return out


def build_object_priors(ann_files: Union[str, Sequence[str]],
                        split: Union[None, str, Sequence[str]] = 'train',
                        top_k: Optional[int] = 50,
                        lexicon: LexiconLike = None,
                        extra_nouns: Iterable[str] = (),
                        cache_file: Optional[str] = None,
                        min_df: int = 1,
                        pos_filter: bool = False,
                        vocab: Optional[Sequence[str]] = None
                        ) -> ObjectPriors:
    """Build (or load from cache) per-image object-noun priors.

    Args:
        ann_files (str | Sequence[str]): Karpathy-format caption json(s).
        split (None | str | Sequence[str]): Split(s) whose images are used,
            both for the vocabulary and for the prior rows. Defaults to
            ``'train'`` so that no test caption informs training.
        top_k (int, optional): Vocabulary size (by document frequency);
            ``None`` or ``<= 0`` keeps every matched noun.
        lexicon (None | str | Mapping | Iterable[str]): See
            :func:`load_lexicon`; ``None`` uses the shipped lexicon.
        extra_nouns (Iterable[str]): Extra lexicon nouns.
        cache_file (str, optional): ``.npz`` cache. Loaded when its key
            matches the inputs, (re)written otherwise.
        min_df (int): Drop nouns mentioned by fewer images. Defaults to 1.
        pos_filter (bool): Drop single-word matches that nltk's POS tagger
            does not tag as nouns. Only used when the tagger's model is
            already installed locally; otherwise a warning is issued and the
            lexicon alone decides. Defaults to False.
        vocab (Sequence[str], optional): A fixed vocabulary (e.g. the one
            chosen on the training split) used as the columns instead of the
            ``top_k`` / ``min_df`` selection; used to get priors of
            validation or test images in the training vocabulary. Its
            entries are added to the lexicon if missing.

    Returns:
        ObjectPriors: The priors.
    """
    if isinstance(ann_files, str):
        ann_files = [ann_files]
    ann_files = list(ann_files)
    if not ann_files:
        raise ValueError('build_object_priors: ann_files is empty.')
    for path in ann_files:
        if not osp.isfile(path):
            raise FileNotFoundError(f'Annotation file not found: {path!r}')
    if isinstance(extra_nouns, str):
        extra_nouns = [extra_nouns]
    # A fixed vocabulary extends the lexicon (it may hold extra nouns).
    lex = load_lexicon(lexicon, list(extra_nouns) + list(vocab or []))
    tagger = None
    if pos_filter:
        tagger = _get_pos_tagger()
        if tagger is None:
            warnings.warn('build_object_priors: pos_filter=True but nltk\'s '
                          'POS tagger model is not installed locally; using '
                          'the lexicon only.')
    key_payload = dict(
        version=PRIORS_FORMAT_VERSION,
        files=[_file_sha1(p) for p in ann_files],
        split=split if split is None or isinstance(split, str) else
        sorted(split),
        top_k=top_k if top_k and top_k > 0 else None,
        min_df=min_df,
        lexicon=lex.digest(),
        pos=tagger is not None,
        vocab=None if vocab is None else list(vocab))
    key = hashlib.sha1(
        json.dumps(key_payload, sort_keys=True).encode('utf-8')).hexdigest()

    if cache_file is not None and osp.isfile(cache_file):
        try:
            cached = ObjectPriors.load(cache_file)
        except (ValueError, OSError, KeyError) as e:
            warnings.warn(f'Ignoring unreadable priors cache {cache_file}: '
                          f'{e}')
        else:
            if cached.key == key:
                return cached

    tokenizer = _get_tokenizer()
    filenames: List[str] = []
    sources: List[int] = []
    per_image: List[Counter] = []
    for src, path in enumerate(ann_files):
        for img in load_caption_images(path, split):
            counter: Counter = Counter()
            for cap in img['captions']:
                counter.update(
                    set(extract_object_nouns(cap, lex, tokenizer, tagger)))
            filenames.append(img['filename'])
            sources.append(src)
            per_image.append(counter)
    if not filenames:
        raise ValueError(f'build_object_priors: no image of split {split!r} '
                         f'in {ann_files}.')

    df: Counter = Counter()
    for counter in per_image:
        df.update(counter.keys())
    if vocab is not None:
        ranked = [_clean_term(v) for v in vocab]
    else:
        ranked = sorted((n for n, c in df.items() if c >= min_df),
                        key=lambda n: (-df[n], n))
        if top_k is not None and top_k > 0:
            ranked = ranked[:top_k]
    col = {n: k for k, n in enumerate(ranked)}
    counts = np.zeros((len(filenames), len(ranked)), dtype=np.int64)
    for i, counter in enumerate(per_image):
        for noun, c in counter.items():
            k = col.get(noun)
            if k is not None:
                counts[i, k] = c
    totals = counts.sum(axis=1, keepdims=True)
    priors = (counts / np.maximum(totals, 1)).astype(np.float32)
    result = ObjectPriors(
        vocab=ranked,
        filenames=filenames,
        priors=priors,
        counts=counts,
        doc_freq=np.array([df[n] for n in ranked], dtype=np.int64),
        sources=np.array(sources, dtype=np.int64),
        key=key)
    if cache_file is not None:
        result.save(cache_file)
    return result
