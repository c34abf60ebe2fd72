# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Inference outside the runner: load a retriever, index images, search."""
from .image_index import IMAGE_EXTENSIONS, ImageIndex, list_images
from .model_loading import (build_image_loader, encode_image_files,
                            encode_texts, get_test_pipeline, init_retriever,
                            model_identity)
from .search import (SearchResult, exact_topk, search_by_image,
                     search_by_text, search_captions)

__all__ = [
    'IMAGE_EXTENSIONS', 'ImageIndex', 'list_images', 'build_image_loader',
    'encode_image_files', 'encode_texts', 'get_test_pipeline',
    'init_retriever', 'model_identity', 'SearchResult', 'exact_topk',
    'search_by_image', 'search_by_text', 'search_captions'
]
