# Copyright (c) rsitr_mm contributors. All rights reserved.
import os
import os.path as osp

import pytest

os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
SHARED_DATA = osp.join(osp.dirname(REPO_ROOT), 'shared', 'data')


@pytest.fixture(scope='session')
def shared_data() -> str:
    """Path of the real RS test data (``../shared/data``); skip if absent."""
    if not osp.isdir(SHARED_DATA):
        pytest.skip('../shared/data is absent')
    return SHARED_DATA


@pytest.fixture(scope='session')
def repo_root() -> str:
    return REPO_ROOT
