# Copyright (c) rsitr_mm contributors. All rights reserved.
import importlib.util
import json
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from rsitr_mm.datasets.synthetic import (SCENE_CLASSES,
                                         generate_synthetic_dataset,
                                         render_scene, resolve_split,
                                         sample_scene, tokenize,
                                         write_captions)
from rsitr_mm.datasets.synthetic.captions import (COUNT_WORDS, NOUNS,
                                                  SINGULAR_WORDS)
from rsitr_mm.datasets.synthetic.render import render_background
from rsitr_mm.datasets.synthetic.scene import COLOURS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CLI = osp.join(REPO, 'tools', 'dataset_converters', 'generate_synthetic.py')


def _load(path):
    with open(path, 'rb') as f:
        raw = f.read()
    return raw, json.loads(raw)


def _pixels(root, filename):
    return np.asarray(Image.open(osp.join(root, 'images', filename)))


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('synthetic'))
    path = generate_synthetic_dataset(
        root,
        num_images=30,
        image_size=64,
        seed=3,
        split=(20, 5, 5),
        progress=False)
    return root, path


def _count_tokens(group):
    """Tokens that may express the group's count."""
    if group['count'] == 1:
        return set(SINGULAR_WORDS)
    return {COUNT_WORDS[group['count']]}


def _noun_tokens(kind):
    words = set()
    for singular, plural in NOUNS[kind]:
        words.add(tokenize(singular)[-1])
        words.add(tokenize(plural)[-1])
    return words


def test_layout(dataset):
    root, path = dataset
    assert osp.basename(path) == 'dataset_synthetic.json'
    _, data = _load(path)
    assert data['dataset'] == 'synthetic'
    with open(osp.join(root, 'classes.txt')) as f:
        assert tuple(f.read().split()) == SCENE_CLASSES
    assert list(SCENE_CLASSES) == sorted(SCENE_CLASSES)
    images = data['images']
    assert [im['imgid'] for im in images] == list(range(30))
    seen_classes = set()
    for im in images:
        assert set(im) >= {
            'filename', 'imgid', 'split', 'class', 'sentids', 'sentences'
        }
        # class field and filename prefix agree
        assert im['class'] in SCENE_CLASSES
        assert im['filename'] == f"{im['class']}_{im['imgid']:05d}.png"
        seen_classes.add(im['class'])
        assert im['sentids'] == list(
            range(5 * im['imgid'], 5 * im['imgid'] + 5))
        raws = [s['raw'] for s in im['sentences']]
        assert len(raws) == 5 and len(set(raws)) == 5
        for s, sid in zip(im['sentences'], im['sentids']):
            assert s['sentid'] == sid and s['imgid'] == im['imgid']
            assert s['tokens'] == tokenize(s['raw'])
            assert all(t == t.lower() and t.isalnum() for t in s['tokens'])
        pixels = _pixels(root, im['filename'])
        assert pixels.shape == (64, 64, 3) and pixels.dtype == np.uint8
        # not trivially flat
        assert pixels.reshape(-1, 3).std(0).mean() > 3
    # 30 images over 10 classes: balanced, 3 each
    assert len(seen_classes) == len(SCENE_CLASSES)
    counts = [im['split'] for im in images]
    assert (counts.count('train'), counts.count('val'),
            counts.count('test')) == (20, 5, 5)


def test_deterministic_and_worker_independent(tmp_path, dataset):
    root, path = dataset
    raw, data = _load(path)
    again = generate_synthetic_dataset(
        str(tmp_path / 'a'),
        num_images=30,
        image_size=64,
        seed=3,
        split=(20, 5, 5),
        num_workers=2,
        progress=False)
    raw_again, _ = _load(again)
    assert raw_again == raw
    for im in data['images']:
        np.testing.assert_array_equal(
            _pixels(root, im['filename']),
            _pixels(str(tmp_path / 'a'), im['filename']))
    other = generate_synthetic_dataset(
        str(tmp_path / 'b'),
        num_images=30,
        image_size=64,
        seed=4,
        split=(20, 5, 5),
        progress=False)
    assert _load(other)[0] != raw


def test_captions_describe_drawn_objects(dataset):
    _, path = dataset
    _, data = _load(path)
    for im in data['images']:
        tokens = [set(s['tokens']) for s in im['sentences']]
        groups = im['scene']['objects']
        allowed_counts = set()
        for i, group in enumerate(groups):
            assert 1 <= group['count'] == len(group['boxes']) <= 6
            allowed_counts |= _count_tokens(group)
            nouns = _noun_tokens(group['kind'])
            mentions = [
                bool(t & nouns) and bool(t & _count_tokens(group))
                for t in tokens
            ]
            # the first group appears, with its count, in every caption;
            # every other group in at least one
            assert all(mentions) if i == 0 else any(mentions), (group, im)
        # no caption states a count that is not in the scene
        for t in tokens:
            stated = {w for w in t if w in COUNT_WORDS.values()}
            assert stated <= allowed_counts, (stated, groups)
        if not groups:
            assert all(not t & set(COUNT_WORDS.values()) for t in tokens)


def test_caption_properties_over_many_scenes():
    bg_words = dict(
        water={'water', 'sea'},
        forest={'forest', 'trees', 'woodland'},
        farmland={'farmland', 'fields'},
        bareland={'bare', 'barren', 'soil'},
        urban={'urban', 'city', 'built', 'grey'},
        grassland={'grass', 'grassland', 'meadow'})
    class_words = dict(
        airport={'airport', 'airfield'},
        bareland={'bare', 'barren'},
        farmland={'farmland', 'agricultural'},
        forest={'forest', 'woodland'},
        harbor={'harbor', 'port'},
        industrial={'industrial', 'factory'},
        parking={'parking', 'park'},
        residential={'residential', 'neighborhood'},
        river={'river', 'riverside'},
        sports={'sports', 'playground'})
    for i in range(200):
        cls = SCENE_CLASSES[i % len(SCENE_CLASSES)]
        rng = np.random.default_rng(i)
        scene = sample_scene(cls, rng)
        caps = write_captions(scene, rng)
        assert len(caps) == 5 and len(set(caps)) == 5
        tokens = [set(tokenize(c)) for c in caps]
        # background is named at least once
        assert any(t & bg_words[scene.background] for t in tokens)
        # the scene class is named at least once
        assert any(t & class_words[cls] for t in tokens), caps
        if not scene.groups:
            assert not any(t & set(COUNT_WORDS.values()) for t in tokens)
            if scene.lines:
                kinds = {ln.kind for ln in scene.lines}
                assert any(t & kinds for t in tokens), caps
        for group in scene.groups[1:]:
            nouns = {n for pair in NOUNS[group.kind] for n in pair}
            assert any(any(n in c.lower() for n in nouns) for c in caps)


def test_pixel_evidence(dataset):
    root, path = dataset
    _, data = _load(path)
    for im in data['images']:
        pixels = _pixels(root, im['filename']).astype(int)
        r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
        if im['class'] == 'harbor':
            # mostly open water: blue-dominant pixels
            assert ((b > r) & (b > g)).mean() > 0.5
        if im['class'] == 'forest':
            assert ((g > r) & (g > b)).mean() > 0.6
        for group in im['scene']['objects']:
            if group['kind'] not in ('storage_tank', 'ship'):
                continue
            colour = np.array(COLOURS[group['colour']])
            for x, y, *_ in group['boxes']:
                i, j = int(y * 64), int(x * 64)
                window = pixels[i - 1:i + 2, j - 1:j + 2].reshape(-1, 3)
                # the object's own colour is drawn at its centre
                err = np.abs(window - colour).max(1).min()
                assert err < 50, (group, window)


def test_background_colours():
    rng = np.random.default_rng(0)
    water = render_background('water', 48, rng)
    assert (water[..., 2] > water[..., 0]).all()
    assert (water[..., 2] > water[..., 1]).all()
    forest = render_background('forest', 48, rng)
    assert (forest[..., 1] > forest[..., 0]).mean() > 0.95
    urban = render_background('urban', 48, rng)
    # grey: channels close to each other
    assert np.abs(urban[..., 0] - urban[..., 2]).mean() < 12
    with pytest.raises(ValueError, match='background'):
        render_background('lava', 48, rng)


def test_render_scene_shape():
    scene = sample_scene('airport', np.random.default_rng(5))
    img = render_scene(scene, 40, np.random.default_rng(6))
    assert img.shape == (40, 40, 3) and img.dtype == np.uint8
    img2 = render_scene(scene, 40, np.random.default_rng(6))
    np.testing.assert_array_equal(img, img2)


def test_resolve_split():
    assert resolve_split((6, 2, 2), 10) == (6, 2, 2)
    assert resolve_split((0.8, 0.1, 0.1), 20) == (16, 2, 2)
    assert resolve_split(np.array([1.0, 0.0, 0.0]), 3) == (3, 0, 0)
    with pytest.raises(ValueError, match='sum to 9'):
        resolve_split((5, 2, 2), 10)
    with pytest.raises(ValueError, match='expected 1'):
        resolve_split((0.5, 0.5, 0.5), 10)
    with pytest.raises(ValueError, match='three numbers'):
        resolve_split((8, 2), 10)
    with pytest.raises(ValueError, match='non-negative'):
        resolve_split((12, -1, -1), 10)


@pytest.mark.parametrize('kwargs, match', [
    (dict(num_images=0), 'num_images'),
    (dict(num_images=2.5), 'num_images'),
    (dict(image_size=16), 'image_size'),
    (dict(seed=-1), 'seed'),
    (dict(split=(3, 1, 1)), 'split counts'),
    (dict(num_workers=-2), 'num_workers'),
])
def test_bad_input(tmp_path, kwargs, match):
    args = dict(num_images=4, image_size=32, split=(2, 1, 1), progress=False)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        generate_synthetic_dataset(str(tmp_path), **args)
    with pytest.raises(ValueError, match='scene_class'):
        sample_scene('volcano', np.random.default_rng(0))


def test_cli_in_process(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location('generate_synthetic', CLI)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / 'cli'
    assert module.main([
        str(out), '--num-images', '12', '--image-size', '32', '--seed', '1',
        '--split', '8', '2', '2', '--num-workers', '0'
    ]) == 0
    printed = capsys.readouterr().out
    assert '12/12' in printed  # progress bar
    _, data = _load(str(out / 'dataset_synthetic.json'))
    assert len(data['images']) == 12
    assert all(
        osp.exists(out / 'images' / im['filename']) for im in data['images'])
    # bad split: clear message, exit code 2
    assert module.main(
        [str(out), '--num-images', '12', '--split', '1', '1', '1']) == 2
    assert 'split counts' in capsys.readouterr().err


def test_cli_subprocess(tmp_path):
    result = subprocess.run([
        sys.executable, CLI,
        str(tmp_path), '--num-images', '4', '--image-size', '32',
        '--no-progress', '--num-workers', '1'
    ],
                            capture_output=True,
                            text=True,
                            cwd=REPO,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert osp.exists(tmp_path / 'dataset_synthetic.json')
    assert len(list((tmp_path / 'images').glob('*.png'))) == 4
