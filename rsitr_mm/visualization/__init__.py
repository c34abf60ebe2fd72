# Copyright (c) rsitr_mm contributors. All rights reserved.
from .attention import draw_attention_maps, overlay_heatmap
from .embeddings import (draw_embedding_scatter, pca_2d, reduce_to_2d,
                         tsne_2d)
from .neck_maps import load_test_image, neck_maps_of_image
from .retrieval_grid import draw_caption_results, draw_image_results
from .salience import draw_salience_maps

__all__ = [
    'draw_attention_maps', 'overlay_heatmap', 'draw_embedding_scatter',
    'pca_2d', 'reduce_to_2d', 'tsne_2d', 'draw_salience_maps',
    'neck_maps_of_image', 'load_test_image', 'draw_image_results',
    'draw_caption_results'
]
