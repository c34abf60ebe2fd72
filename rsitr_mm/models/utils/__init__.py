# Copyright (c) rsitr_mm contributors. All rights reserved.
from .clip_convert import (convert_clip_checkpoint, convert_clip_state_dict,
                           infer_clip_arch, load_clip_checkpoint)
from .clip_tokenizer_files import (find_clip_bpe_file, read_clip_bpe,
                                   write_clip_tokenizer_files)
from .tiny_clip import (make_random_clip_dir, make_tiny_clip_dir,
                        random_clip_config, tiny_clip_config)
from .tiny_towers import localise_random, localise_tiny

__all__ = [
    'convert_clip_checkpoint', 'convert_clip_state_dict', 'infer_clip_arch',
    'load_clip_checkpoint', 'find_clip_bpe_file', 'read_clip_bpe',
    'write_clip_tokenizer_files', 'make_tiny_clip_dir', 'tiny_clip_config',
    'make_random_clip_dir', 'random_clip_config', 'localise_tiny',
    'localise_random'
]
