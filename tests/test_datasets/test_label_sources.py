# Copyright (c) rsitr_mm contributors. All rights reserved.
from pathlib import Path

import pytest

from rsitr_mm.datasets.label_sources import (
    LABEL_RULES, SYDNEY_CLASSES, UCM_CLASSES, filename_prefix_label,
    load_class_map, normalize_class_name, sydney_keyword_label,
    ucm_index_label)

DATA = Path(__file__).resolve().parents[2].parent / 'shared' / 'data'
RSICD_CLASSES = DATA / 'annotations' / 'rsicd_classes'


def test_normalize_class_name():
    assert normalize_class_name('BareLand') == 'bareland'
    assert normalize_class_name('bare_land 2') == 'bareland'
    assert normalize_class_name('playfields') == 'playfields'
    assert normalize_class_name('River/Lake') == 'riverlake'


def test_filename_prefix_label():
    assert filename_prefix_label('airport_12.jpg') == 'airport'
    assert filename_prefix_label('images/bareland_1.jpg') == 'bareland'
    # prefix before the LAST underscore
    assert filename_prefix_label('dense_residential_3.tif') == \
        'denseresidential'
    assert filename_prefix_label('00001.jpg') is None
    assert filename_prefix_label('_5.jpg') is None


def test_ucm_index_label():
    assert len(UCM_CLASSES) == 21
    assert list(UCM_CLASSES) == sorted(UCM_CLASSES)
    assert ucm_index_label('1.tif') == 'agricultural'
    assert ucm_index_label('100.tif') == 'agricultural'
    assert ucm_index_label('101.tif') == 'airplane'
    assert ucm_index_label('2100.tif') == 'tenniscourt'
    for bad in ('0.tif', '2101.tif', 'a.tif'):
        assert ucm_index_label(bad) is None


def test_sydney_keyword_label():
    assert sorted(SYDNEY_CLASSES) == list(SYDNEY_CLASSES)
    caps = [
        'A residential area with houses .', 'Many houses and a river .',
        'Residential buildings near two rivers .', 'Houses by the river .',
        'A residential area .'
    ]
    # residential: 3 votes, river: 3 votes (river, rivers, river) -> tie
    assert sydney_keyword_label('x.tif', caps) is None
    caps[3] = 'Houses in lines .'
    assert sydney_keyword_label('x.tif', caps) == 'residential'
    # whole words only: "riverside" is not "river"
    assert sydney_keyword_label('x.tif', ['A riverside walk .']) is None
    assert sydney_keyword_label('x.tif', ['Green trees .'] * 5) is None
    assert sydney_keyword_label(
        'x.tif', ['Two RUNWAYS .', 'An airport with a runway .']) == 'runway'
    assert set(LABEL_RULES) == {
        'filename_prefix', 'ucm_index', 'sydney_keywords'
    }


def test_class_map_folder_and_csv(tmp_path):
    folder = tmp_path / 'classes'
    folder.mkdir()
    (folder / 'BareLand.txt').write_text('bareland_1.jpg\n00002.jpg\n\n')
    (folder / 'playfields.txt').write_text('00001.jpg\n')
    assert load_class_map(str(folder)) == {
        'bareland_1.jpg': 'bareland',
        '00002.jpg': 'bareland',
        '00001.jpg': 'playfields'
    }
    csv_file = tmp_path / 'map.csv'
    csv_file.write_text('filename,class\nimages/a_1.jpg,Dense Residential\n'
                        '\nb.jpg,Port\n')
    assert load_class_map(str(csv_file)) == {
        'a_1.jpg': 'denseresidential',
        'b.jpg': 'port'
    }


def test_class_map_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='nowhere'):
        load_class_map(str(tmp_path / 'nowhere'))
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match='no <Class>.txt'):
        load_class_map(str(empty))
    bad = tmp_path / 'bad.csv'
    bad.write_text('a.jpg,port\nb.jpg\n')
    with pytest.raises(ValueError, match=r'bad\.csv:2: expected 2 columns'):
        load_class_map(str(bad))
    twice = tmp_path / 'twice.csv'
    twice.write_text('a.jpg,port\na.jpg,Beach\n')
    with pytest.raises(ValueError, match=r"twice\.csv:2.*'a\.jpg'.*'beach'"):
        load_class_map(str(twice))


@pytest.mark.skipif(not RSICD_CLASSES.is_dir(), reason='no shared data')
def test_real_rsicd_class_lists():
    mapping = load_class_map(str(RSICD_CLASSES))
    files = sorted(RSICD_CLASSES.glob('*.txt'))
    expected = {}
    for f in files:
        for line in f.read_text().split('\n'):
            if line.strip():
                expected[line.strip()] = normalize_class_name(f.stem)
    assert mapping == expected
    # every prefixed filename maps to the class of its prefix
    for name, cls in mapping.items():
        prefix = filename_prefix_label(name)
        if prefix is not None:
            assert prefix == cls, name
    assert len(set(mapping.values())) == len(files)
