# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Loading a checkpoint never runs code from it (unless the user opts in).

Every crafted pickle below would create a marker file when unpickled with
full pickle; through each entry point (mmengine's loaders after
``import rsitr_mm``, ``init_retriever``, ``tools/test.py``) it must be
refused with the file named, and the marker must never appear.
"""
import builtins
import os
import os.path as osp
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

import rsitr_mm  # noqa: F401
from rsitr_mm.utils import (UntrustedCheckpointError, safe_torch_load,
                            trust_checkpoints)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


class _Payload:
    """Unpickling calls ``func(*args)``."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _touch_cmd(marker):
    return f"open({marker!r}, 'w').close()"


def _getattr_chain(marker):
    # getattr(HistoryBuffer.__init__, '__globals__') would reach builtins;
    # only getattr(HistoryBuffer, 'min'|'max'|'current'|'mean') is allowed
    from mmengine.logging.history_buffer import HistoryBuffer
    return _Payload(getattr, HistoryBuffer.__init__, '__globals__')


class _GetattrOnBuffer:

    def __reduce__(self):
        from mmengine.logging.history_buffer import HistoryBuffer
        return getattr, (HistoryBuffer, '__init__')


# (id, builds the evil object from the marker path); GLOBAL_NAMED below
# gives what the refusal must name for each
PAYLOADS = [
    ('os-system', lambda m: _Payload(os.system, f'touch {m}')),
    ('builtins-exec', lambda m: _Payload(builtins.exec, _touch_cmd(m))),
    ('builtins-eval', lambda m: _Payload(builtins.eval, _touch_cmd(m))),
    ('subprocess-popen',
     lambda m: _Payload(subprocess.Popen, ['touch', m])),
    ('builtins-open', lambda m: _Payload(builtins.open, m, 'w')),
    ('getattr-globals', _getattr_chain),
    ('getattr-on-allowed-class', lambda m: _GetattrOnBuffer()),
    ('numpy-load', lambda m: _Payload(np.load, m + '.npy')),
]

#: a part of the message naming the offending global, per payload
GLOBAL_NAMED = {
    'os-system': 'system',
    'builtins-exec': 'exec',
    'builtins-eval': 'eval',
    'subprocess-popen': 'Popen',
    'builtins-open': 'open',
    'getattr-globals': '__init__',
    'getattr-on-allowed-class': '__init__',
    'numpy-load': 'numpy.load',
}

# (id, writes ``obj`` inside a checkpoint at ``path``)
FORMATS = [
    ('zip-state_dict',
     lambda obj, path: torch.save(
         {'state_dict': {'w': torch.ones(2)}, 'meta': {'x': obj}}, path)),
    ('zip-message_hub',
     lambda obj, path: torch.save(
         {'state_dict': {}, 'message_hub': {'runtime_info': {'e': obj}}},
         path)),
    ('legacy-format',
     lambda obj, path: torch.save(
         {'state_dict': {}, 'x': obj}, path,
         _use_new_zipfile_serialization=False)),
    ('plain-pickle',
     lambda obj, path: pickle.dump({'state_dict': {}, 'x': obj},
                                   open(path, 'wb'))),
]


def _load_mmengine(path):
    from mmengine.runner.checkpoint import _load_checkpoint
    return _load_checkpoint(path, map_location='cpu')


def _load_mmengine_model(path):
    from mmengine.runner import load_checkpoint
    return load_checkpoint(torch.nn.Linear(2, 2), path, map_location='cpu')


def _load_loader(path):
    from mmengine.runner.checkpoint import CheckpointLoader
    return CheckpointLoader.load_checkpoint(path, map_location='cpu')


ENTRY_POINTS = [
    ('mmengine-_load_checkpoint', _load_mmengine),
    ('mmengine-load_checkpoint', _load_mmengine_model),
    ('CheckpointLoader', _load_loader),
    ('safe_torch_load', safe_torch_load),
]


@pytest.mark.parametrize(
    'payload,make', PAYLOADS, ids=[p[0] for p in PAYLOADS])
@pytest.mark.parametrize(
    'write', [f[1] for f in FORMATS], ids=[f[0] for f in FORMATS])
def test_crafted_pickle_runs_nothing(tmp_path, payload, make, write):
    marker = str(tmp_path / 'PWNED')
    path = str(tmp_path / 'evil.pth')
    write(make(marker), path)
    for name, load in ENTRY_POINTS:
        with pytest.raises(pickle.UnpicklingError) as err:
            load(path)
        assert 'evil.pth' in str(err.value), (name, str(err.value))
        # the refusal names the offending global (zip, legacy and plain)
        assert GLOBAL_NAMED[payload] in str(err.value), (name,
                                                         str(err.value))
        assert '--trust-checkpoint' in str(err.value)
        assert not osp.exists(marker), name


def test_message_names_the_global(tmp_path):
    path = str(tmp_path / 'evil.pth')
    torch.save({'x': _Payload(os.system, 'true')}, path)
    with pytest.raises(UntrustedCheckpointError,
                       match=r"evil\.pth.*posix\.system"):
        _load_mmengine(path)


def _mmengine_like_checkpoint(path):
    """What mmengine's Runner writes: HistoryBuffer, numpy values."""
    from mmengine.logging import MessageHub
    hub = MessageHub(f'trust-{id(path)}')
    hub.update_scalar('train/loss', np.float64(0.5))
    hub.update_scalar('train/lr', 0.1)
    hub.update_info('best_score', np.float32(12.5))
    hub.update_info('keep_ckpt_ids', [1, 2])
    ckpt = dict(
        meta=dict(epoch=2, iter=10, seed=np.int64(3),
                  arr=np.arange(4, dtype=np.int16), dtype=np.dtype('f8')),
        state_dict={'w': torch.ones(2)},
        message_hub=hub.state_dict(),
        optimizer={'state': {}, 'param_groups': [{'lr': 0.1}]})
    torch.save(ckpt, path)
    return ckpt


def test_runner_checkpoint_loads_exactly(tmp_path):
    path = str(tmp_path / 'epoch_2.pth')
    ckpt = _mmengine_like_checkpoint(path)
    loaded = _load_mmengine(path)
    assert loaded['meta']['seed'] == 3
    assert np.array_equal(loaded['meta']['arr'], ckpt['meta']['arr'])
    buf = loaded['message_hub']['log_scalars']['train/loss']
    assert buf.current() == 0.5 and buf.mean() == 0.5
    assert loaded['message_hub']['runtime_info']['best_score'] == 12.5


def test_import_does_not_weaken_torch_load(tmp_path):
    path = str(tmp_path / 'epoch_2.pth')
    _mmengine_like_checkpoint(path)
    # our allow-list is only active inside our loader
    from mmengine.logging.history_buffer import HistoryBuffer
    from rsitr_mm.utils.safe_load import _restricted_getattr
    registered = [g[0] if isinstance(g, tuple) else g
                  for g in torch.serialization.get_safe_globals()]
    assert HistoryBuffer not in registered
    assert _restricted_getattr not in registered
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)


def test_opt_in_is_explicit_and_scoped(tmp_path):
    marker = str(tmp_path / 'RAN')
    path = str(tmp_path / 'custom.pth')
    other = str(tmp_path / 'other.pth')
    torch.save({'x': _Payload(builtins.exec, _touch_cmd(marker))}, path)
    torch.save({'x': _Payload(builtins.exec, _touch_cmd(marker))}, other)
    with trust_checkpoints(other):  # trusting another file is not enough
        with pytest.raises(UntrustedCheckpointError):
            _load_mmengine(path)
    assert not osp.exists(marker)
    with trust_checkpoints(path):  # the user trusts this file
        _load_mmengine(path)
    assert osp.exists(marker)
    os.remove(marker)
    with pytest.raises(UntrustedCheckpointError):  # scope ended
        _load_mmengine(path)
    assert not osp.exists(marker)


# ---------------------------------------------------- real entry points
# lines after the tiny demo model (tests/conftest.py, sizes in ``tiny``)
TINY = """\
test_dataloader = dict(batch_size=4, dataset=dict(data_root=data_root))
"""


@pytest.fixture(scope='module')
def tiny(tmp_path_factory, tiny_demo):
    root = tmp_path_factory.mktemp('trust')
    data = tiny_demo.dataset(root, num_images=8, split=(4, 2, 2), seed=1)
    return root, tiny_demo.config(
        root / 'tiny.py', data, TINY, custom_imports=True, base_channels=4,
        num_stages=2, image_channels=8, word_dim=8, hidden_dim=8,
        embed_dim=8)


def _evil(root, name='evil.pth'):
    marker = str(root / f'PWNED-{name}')
    path = str(root / name)
    torch.save({'state_dict': {}, 'x': _Payload(os.system, f'touch {marker}')},
               path)
    return path, marker


def test_init_retriever_refuses(tiny):
    from rsitr_mm.apis import init_retriever
    root, cfg = tiny
    path, marker = _evil(root)
    with pytest.raises(UntrustedCheckpointError, match='evil.pth'):
        init_retriever(cfg, path)
    assert not osp.exists(marker)


def _tool(args, cwd):
    env = dict(os.environ, HF_HUB_OFFLINE='1', PYTHONPATH=REPO)
    return subprocess.run([sys.executable] + args, cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_tools_test_refuses_and_opt_in_runs(tiny):
    root, cfg = tiny
    path, marker = _evil(root, 'cli.pth')
    proc = _tool([f'{REPO}/tools/test.py', cfg, path, '--work-dir',
                  str(root / 'w')], cwd=str(root))
    assert proc.returncode != 0
    assert 'UntrustedCheckpointError' in proc.stderr
    assert 'cli.pth' in proc.stderr and 'posix.system' in proc.stderr
    assert not osp.exists(marker)


# ------------------------------------------- strict loading (issue item 3)
def _drop_first(sd):
    sd.pop(next(iter(sd)))
    return sd


def _reshape_last(sd):
    key = [k for k, v in sd.items() if v.ndim >= 1][-1]
    sd[key] = torch.zeros(3, 3)
    return sd


# (id, damages the model's state dict, expected parts of the message)
STRICT_CASES = [
    ('missing-key', _drop_first, ['missing key']),
    ('unexpected-key', lambda sd: dict(sd, extra_head_w=torch.ones(1)),
     ['unexpected key', 'extra_head_w']),
    ('wrong-shape', _reshape_last, ['another shape', '[3, 3]']),
    ('unrelated-model', lambda sd: {'backbone.conv1.weight':
                                    torch.ones(64, 3, 7, 7)},
     ['missing key', 'unexpected key', 'backbone.conv1.weight']),
    ('module-prefix-ok', lambda sd: {'module.' + k: v for k, v in sd.items()},
     None),
]


@pytest.mark.parametrize(
    'damage,parts', [c[1:] for c in STRICT_CASES],
    ids=[c[0] for c in STRICT_CASES])
def test_init_retriever_is_strict(tiny, damage, parts):
    from rsitr_mm.apis import init_retriever
    root, cfg = tiny
    sd = damage(dict(init_retriever(cfg).state_dict()))
    path = str(root / 'weights.pth')
    torch.save({'state_dict': sd, 'meta': {}}, path)
    if parts is None:
        init_retriever(cfg, path)
        return
    with pytest.raises(ValueError) as err:
        init_retriever(cfg, path)
    for part in ['weights.pth'] + parts + ['strict=False']:
        assert part in str(err.value), (part, str(err.value))
    init_retriever(cfg, path, strict=False)  # the explicit way out


def test_tools_test_is_strict_unless_non_strict(tiny):
    from rsitr_mm.apis import init_retriever
    root, cfg = tiny
    sd = _reshape_last(dict(init_retriever(cfg).state_dict()))
    path = str(root / 'shape.pth')
    torch.save({'state_dict': sd, 'meta': {}}, path)
    args = [f'{REPO}/tools/test.py', cfg, path, '--work-dir', str(root / 'w')]
    proc = _tool(args, cwd=str(root))
    assert proc.returncode != 0
    assert 'shape.pth' in proc.stderr and 'another shape' in proc.stderr
    assert '--non-strict' in proc.stderr
    assert '| i2t_R@1 |' not in proc.stdout
    proc = _tool(args + ['--non-strict'], cwd=str(root))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert '| i2t_R@1 |' in proc.stdout
