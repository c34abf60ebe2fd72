# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Write ``transformers`` CLIP tokenizer files from the real CLIP BPE table.

The byte-level BPE table of OpenAI CLIP (``bpe_simple_vocab_16e6.txt.gz``) is
shipped inside the ``open_clip`` package. This module finds that file without
importing ``open_clip`` (which would import torchvision and timm) and turns it
into the ``vocab.json`` / ``merges.txt`` pair that ``CLIPTokenizer`` and
``CLIPTokenizerFast`` read, so that our tokenizer gives exactly OpenAI's token
ids (``'a photo of a cat'`` -> ``[49406, 320, 1125, 539, 320, 2368, 49407]``)
without any download.
"""
import gzip
import importlib.util
import json
import os
import os.path as osp
from typing import List, Optional, Tuple

BPE_FILENAME = 'bpe_simple_vocab_16e6.txt.gz'
#: Number of BPE merges used by CLIP: 49152 tokens minus 256 byte tokens
#: minus the two special tokens.
NUM_CLIP_MERGES = 49152 - 256 - 2
CLIP_VOCAB_SIZE = 49408
SOT_TOKEN = '<|startoftext|>'
EOT_TOKEN = '<|endoftext|>'


def find_clip_bpe_file() -> str:
    """Locate ``bpe_simple_vocab_16e6.txt.gz`` inside the installed
    ``open_clip`` package (the package is not imported).

    Returns:
        str: Path of the gzipped BPE merges file.

    Raises:
        FileNotFoundError: If ``open_clip`` is not installed or ships no BPE
            file.
    """
    spec = importlib.util.find_spec('open_clip')
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f'The CLIP BPE table {BPE_FILENAME} is looked up inside the '
            '`open_clip` package, which is not installed. Install '
            '`open_clip_torch` (`pip install --no-deps open_clip_torch` is '
            'enough) or pass `bpe_path` explicitly.')
    for location in spec.submodule_search_locations:
        path = osp.join(location, BPE_FILENAME)
        if osp.isfile(path):
            return path
    raise FileNotFoundError(
        f'The installed `open_clip` package has no {BPE_FILENAME} in '
        f'{list(spec.submodule_search_locations)}.')


def _bytes_to_unicode() -> List[str]:
    """The 256 printable unicode characters standing for the bytes 0..255,
    in the order of the CLIP / GPT-2 byte-level vocabulary.

    The bytes that are printable Latin-1 characters (``!``..``~``,
    ``\xa1``..``\xac``, ``\xae``..``\xff``) stand for themselves and come
    first; the other 68 bytes, in ascending order, stand for ``chr(256)``,
    ``chr(257)``, ... and follow. Built here because transformers 5 no
    longer exposes the helper in ``tokenization_clip``.
    """
    printable = [b for b in range(256)
                 if 0x21 <= b <= 0x7e or 0xa1 <= b <= 0xac or b >= 0xae]
    others = [b for b in range(256) if b not in set(printable)]
    return ([chr(b) for b in printable]
            + [chr(256 + n) for n in range(len(others))])


def read_clip_bpe(
        bpe_path: Optional[str] = None) -> Tuple[dict, List[Tuple[str, str]]]:
    """Build the CLIP vocabulary and merge list from the BPE table.

    Args:
        bpe_path (str, optional): Path of ``bpe_simple_vocab_16e6.txt.gz``.
            Defaults to the copy inside the installed ``open_clip``.

    Returns:
        tuple: ``(vocab, merges)`` where ``vocab`` maps each of the 49408
        tokens to its id and ``merges`` is the list of 48894 merge pairs.
    """
    bpe_path = bpe_path or find_clip_bpe_file()
    with gzip.open(bpe_path, 'rt', encoding='utf-8') as f:
        lines = f.read().split('\n')
    # The first line is a version header; the table holds more merges than
    # CLIP uses, so keep only the first NUM_CLIP_MERGES.
    merge_lines = lines[1:NUM_CLIP_MERGES + 1]
    if len(merge_lines) != NUM_CLIP_MERGES:
        raise ValueError(
            f'{bpe_path} holds {len(merge_lines)} merges, expected at least '
            f'{NUM_CLIP_MERGES}: is it the CLIP BPE table?')
    merges = [tuple(line.split()) for line in merge_lines]
    byte_tokens = _bytes_to_unicode()
    tokens = byte_tokens + [t + '</w>' for t in byte_tokens]
    tokens += [a + b for a, b in merges]
    tokens += [SOT_TOKEN, EOT_TOKEN]
    vocab = {tok: i for i, tok in enumerate(tokens)}
    assert len(vocab) == CLIP_VOCAB_SIZE, len(vocab)
    return vocab, merges


def write_clip_tokenizer_files(out_dir: str,
                               bpe_path: Optional[str] = None,
                               model_max_length: int = 77) -> str:
    """Write a ``transformers`` CLIP tokenizer into ``out_dir``.

    ``vocab.json`` and ``merges.txt`` are written first, then loaded with
    ``CLIPTokenizerFast`` and saved again with ``save_pretrained`` so that the
    directory also holds ``tokenizer.json`` / ``tokenizer_config.json`` and
    works with ``AutoTokenizer``, ``CLIPTokenizer`` and ``CLIPTokenizerFast``.

    Args:
        out_dir (str): Directory to write into (created if missing; other
            files in it are kept).
        bpe_path (str, optional): The CLIP BPE table. Defaults to the copy in
            the installed ``open_clip`` package.
        model_max_length (int): Context length stored in the tokenizer
            config. Defaults to 77.

    Returns:
        str: ``out_dir``.
    """
    from transformers import CLIPTokenizerFast

    vocab, merges = read_clip_bpe(bpe_path)
    os.makedirs(out_dir, exist_ok=True)
    with open(osp.join(out_dir, 'vocab.json'), 'w', encoding='utf-8') as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(osp.join(out_dir, 'merges.txt'), 'w', encoding='utf-8') as f:
        f.write('#version: 0.2\n')
        f.write('\n'.join(f'{a} {b}' for a, b in merges))
        f.write('\n')
    tokenizer = CLIPTokenizerFast.from_pretrained(
        out_dir, local_files_only=True, model_max_length=model_max_length)
    tokenizer.save_pretrained(out_dir)
    return out_dir
