"""mmpretrain's retrieval inferencers drive our retriever on real images."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from rsitr_mm.datasets.synthetic import generate_synthetic_dataset

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO_CONFIG = osp.join(REPO, 'configs', 'demo_tinycnn-bigru_synthetic.py')


@pytest.fixture(scope='module')
def tiny(tmp_path_factory, shared_data):
    from test_image_index import tiny_options  # noqa: E402
    root = tmp_path_factory.mktemp('infer')
    generate_synthetic_dataset(str(root / 'synth'), num_images=12,
                               image_size=32, seed=0, split=(8, 2, 2),
                               progress=False)
    ann = str(root / 'synth' / 'dataset_synthetic.json')
    cfg = Config.fromfile(DEMO_CONFIG)
    cfg.merge_from_dict(tiny_options(ann))
    images = sorted(glob.glob(osp.join(shared_data, 'rsicd_sample',
                                       'images', '*.jpg')))[:6]
    assert len(images) == 6
    return cfg, images


def test_text_to_image_inferencer_returns_topk(tiny):
    from mmpretrain.apis import TextToImageRetrievalInferencer
    cfg, images = tiny
    torch.manual_seed(0)
    infer = TextToImageRetrievalInferencer(
        cfg, prototype=images, device='cpu')
    out = infer(['two white storage tanks beside a road', 'a green lake'],
                topk=3)
    assert len(out) == 2  # one ranked list per free-text query
    for res in out:
        assert len(res) == 3
        assert {r['sample_idx'] for r in res} <= set(range(6))
        scores = [float(r['match_score']) for r in res]
        assert scores == sorted(scores, reverse=True)
        assert all(r['sample']['img_path'] in images for r in res)


def test_image_to_text_inferencer_returns_topk(tiny):
    from mmpretrain.apis import ImageToTextRetrievalInferencer
    cfg, images = tiny
    torch.manual_seed(0)
    captions = ['many buildings', 'a river', 'a road', 'green trees']
    infer = ImageToTextRetrievalInferencer(
        cfg, prototype=captions, device='cpu')
    out = infer(images[:2], topk=2)
    assert len(out) == 2  # one ranked list per image
    for res in out:
        assert len(res) == 2
        assert all(r['text'] in captions for r in res)
        scores = [float(r['match_score']) for r in res]
        assert scores == sorted(scores, reverse=True)
