# Copyright (c) rsitr_mm contributors. All rights reserved.
from .attention import draw_attention_maps, overlay_heatmap
from .embeddings import (draw_embedding_scatter, pca_2d, reduce_to_2d,
                         tsne_2d)
from .neck_maps import neck_maps_of_image
from .salience import draw_salience_maps

__all__ = [
    'draw_attention_maps', 'overlay_heatmap', 'draw_embedding_scatter',
    'pca_2d', 'reduce_to_2d', 'tsne_2d', 'draw_salience_maps',
    'neck_maps_of_image'
]
