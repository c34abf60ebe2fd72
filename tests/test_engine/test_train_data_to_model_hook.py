# Copyright (c) rsitr_mm contributors. All rights reserved.
"""TrainDataToModelHook: model-side data from the training dataset.

Through ``tools/train.py`` on generated scenes (tiny CNN + BiGRU, no path in
the model config):

* one process: the BiGRU vocabulary is the one built from the training
  annotation file; resuming the run restores it from the checkpoint and the
  STL warm-up count continues (it is saved in the checkpoint);
* two processes (gloo, ``tools/dist_train.sh``): the hook resizes the
  embedding after mmengine wrapped the model in DDP, wraps it again, and
  both ranks end with identical weights; fine-tuning from a checkpoint of
  another vocabulary (``load_from``) resizes it once more and the hook
  wraps again in ``before_train``. Without either re-wrap the backward
  fails (checked when the tests were written).
"""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

from rsitr_mm.datasets.synthetic import generate_synthetic_dataset
from rsitr_mm.datasets.vocab import Vocabulary
from rsitr_mm.engine.hooks import train_annotation_files

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

CONFIG = """
_base_ = [r'{repo}/configs/demo_tinycnn-bigru_synthetic.py']
custom_imports = dict(imports=['rsitr_mm', 'rank_dump'],
                      allow_failed_imports=False)
data_root = r'{data_root}'
model = dict(
    image_encoder=dict(base_channels=8, num_stages=3, out_indices=(2, )),
    image_in_channels=32,
    text_encoder=dict(word_dim=16, hidden_dim=32),
    text_in_channels=32,
    embed_dim=32,
    losses=[dict(type='MultiPositiveInfoNCELoss'),
            dict(type='SemanticGuidedTripletLoss', semantic='none',
                 warmup_iters=100)])
train_dataloader = dict(batch_size=8, num_workers=0,
                        persistent_workers=False,
                        dataset=dict(data_root=data_root))
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = None
test_cfg = None
test_evaluator = None
train_cfg = dict(max_epochs={epochs}, val_interval=100)
param_scheduler = []
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(save_best=None, max_keep_ckpts=-1))
custom_hooks = [dict(type='TrainDataToModelHook'), dict(type='RankDumpHook')]
randomness = dict(seed=3)
"""

# every rank writes its final state dict (the checkpoint is rank 0's only)
RANK_DUMP = """
import os
import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmpretrain.registry import HOOKS

@HOOKS.register_module()
class RankDumpHook(Hook):
    # whether every batch came with the pipeline's token ids, encoded with
    # the vocabulary the model trains with
    tokens_ok = True

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        model = runner.model.module if is_model_wrapper(runner.model) \\
            else runner.model
        tok = model.text_encoder.caption_tokenizer
        texts = [s.text for s in data_batch['data_samples']]
        ids = data_batch.get('text_data', {}).get('input_ids')
        self.tokens_ok &= ids is not None and torch.equal(
            ids, tok.collate([tok.encode(t) for t in texts])['input_ids'])

    def after_run(self, runner):
        model = runner.model.module if is_model_wrapper(runner.model) \\
            else runner.model
        state = model.state_dict()
        state['tokens_from_pipeline'] = torch.tensor(self.tokens_ok)
        torch.save(state,
                   os.path.join(runner.work_dir, f'rank{get_rank()}.pt'))
"""


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp('train_data_hook')
    data_root = str(root / 'data')
    ann = generate_synthetic_dataset(
        data_root, num_images=8, image_size=32, seed=1, split=(4, 2, 2),
        progress=False)
    (root / 'rank_dump.py').write_text(RANK_DUMP)
    cfgs = {}
    for epochs in (1, 2):
        path = root / f'cfg_{epochs}.py'
        path.write_text(CONFIG.format(repo=REPO, data_root=data_root,
                                      epochs=epochs))
        cfgs[epochs] = str(path)
    return root, cfgs, ann


def _run(args, root, **env):
    env = dict(os.environ, HF_HUB_OFFLINE='1', PYTHONUNBUFFERED='1',
               PYTHONPATH=os.pathsep.join([str(root), REPO]), **env)
    proc = subprocess.run(args, cwd=str(root), env=env, capture_output=True,
                          text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return out


def _words(state):
    return bytes(state['text_encoder.vocab_bytes'].tolist()).decode(
        'utf-8').split('\n')


def test_annotation_files_of_wrapped_and_concatenated_datasets():
    class DS:
        def __init__(self, ann):
            self.ann_file = ann

    class Concat:
        datasets = [DS('a.json'), DS('b.json'), DS('a.json')]

    class Repeat:
        dataset = Concat()

    class LeakageSafe:
        dataset_cfgs = [dict(data_root='r', ann_file='c.json'),
                        dict(ann_file='/abs/d.json')]

    assert train_annotation_files(Repeat()) == ['a.json', 'b.json']
    assert train_annotation_files(LeakageSafe()) == [
        osp.join('r', 'c.json'), '/abs/d.json']
    with pytest.raises(ValueError, match='ann_files'):
        train_annotation_files(DS(''))


def test_vocab_from_train_data_then_resume_keeps_vocab_and_warmup(setup):
    root, cfgs, ann = setup
    work = root / 'single'
    _run([sys.executable, f'{REPO}/tools/train.py', cfgs[1], '--work-dir',
          str(work)], root)
    expected = Vocabulary.from_karpathy([ann]).idx2word
    ckpt = torch.load(str(work / 'epoch_1.pth'), map_location='cpu',
                      weights_only=False)
    state = ckpt['state_dict']
    assert _words(state) == expected
    assert state['text_encoder.embed.weight'].shape[0] == len(expected)
    steps = 4 * 5 // 8  # 4 train images x 5 captions, batch 8, drop_last
    assert int(state['losses.1.warmup_step']) == steps
    # resume for one more epoch: vocabulary from the checkpoint, warm-up
    # continues (2 epochs' steps, not 1)
    _run([sys.executable, f'{REPO}/tools/train.py', cfgs[2], '--work-dir',
          str(work), '--resume', str(work / 'epoch_1.pth')], root)
    state = torch.load(str(work / 'epoch_2.pth'), map_location='cpu',
                       weights_only=False)['state_dict']
    assert _words(state) == expected
    assert int(state['losses.1.warmup_step']) == 2 * steps


def test_two_processes_rewrap_and_stay_identical(setup):
    root, cfgs, ann = setup
    work = root / 'ddp'
    out = _run(['bash', f'{REPO}/tools/dist_train.sh', cfgs[1], '2',
                '--work-dir', str(work), '--cfg-options',
                'train_dataloader.batch_size=4'], root,
               PYTHON=sys.executable, PORT=str(29200 + os.getpid() % 500))
    assert 'Distributed training: True' in out, out[-3000:]
    assert 'TrainDataToModelHook: built text_encoder' in out, out[-3000:]
    s0 = torch.load(str(work / 'rank0.pt'), map_location='cpu')
    s1 = torch.load(str(work / 'rank1.pt'), map_location='cpu')
    assert _words(s0) == Vocabulary.from_karpathy([ann]).idx2word
    # BatchNorm running statistics are per rank (SyncBuffersHook, not used
    # here, averages them); everything else must be identical
    for key in s0:
        if 'running_' not in key and 'num_batches' not in key:
            assert torch.equal(s0[key], s1[key]), key
    assert int(s0['losses.1.warmup_step']) == 4 * 5 // 8
    # the captions were tokenised in the data pipeline
    assert bool(s0['tokens_from_pipeline'])


def test_two_processes_load_from_another_vocabulary(setup, tmp_path):
    """Fine-tuning (load_from, non-strict) from a checkpoint whose
    vocabulary differs from the new training data's: the checkpoint's
    vocabulary wins (resized in place after the hook built the data's), the
    hook wraps DDP again in before_train, the ranks stay identical."""
    root, cfgs, ann = setup
    source = root / 'single' / 'epoch_1.pth'
    if not source.is_file():
        _run([sys.executable, f'{REPO}/tools/train.py', cfgs[1],
              '--work-dir', str(root / 'single')], root)
    other = str(tmp_path / 'other')
    other_ann = generate_synthetic_dataset(
        other, num_images=8, image_size=32, seed=7, split=(4, 2, 2),
        progress=False)
    old = Vocabulary.from_karpathy([ann]).idx2word
    assert Vocabulary.from_karpathy([other_ann]).idx2word != old
    work = tmp_path / 'ddp_ft'
    out = _run(['bash', f'{REPO}/tools/dist_train.sh', cfgs[1], '2',
                '--work-dir', str(work), '--cfg-options',
                f'train_dataloader.dataset.data_root={other}',
                f'load_from={source}', 'train_cfg.strict_load=False',
                'train_dataloader.batch_size=4'], root,
               PYTHON=sys.executable, PORT=str(29700 + os.getpid() % 200))
    assert 'Distributed training: True' in out, out[-3000:]
    s0 = torch.load(str(work / 'rank0.pt'), map_location='cpu')
    s1 = torch.load(str(work / 'rank1.pt'), map_location='cpu')
    assert _words(s0) == old
    for key in s0:
        if 'running_' not in key and 'num_batches' not in key:
            assert torch.equal(s0[key], s1[key]), key
    # the pipeline tokenised with the checkpoint's vocabulary (the hook
    # hands it over in before_train, after the checkpoint was loaded)
    assert bool(s0['tokens_from_pipeline'])


def test_modules_with_their_own_data_need_no_train_annotations(tmp_path):
    """A model whose config named its data (here the BiGRU's ann_files)
    trains on a dataset without ``ann_file`` (e.g. pre-collated batches):
    the hook leaves it alone instead of refusing."""
    from types import SimpleNamespace

    from mmengine.runner import BaseLoop

    from rsitr_mm.engine.hooks import TrainDataToModelHook
    from rsitr_mm.models.backbones import BiGRUTextEncoder

    ann = generate_synthetic_dataset(
        str(tmp_path / 'd'), num_images=6, image_size=32, seed=0,
        split=(4, 1, 1), progress=False)
    enc = BiGRUTextEncoder(ann_files=[ann], word_dim=8, hidden_dim=8)
    words = len(enc.vocab)

    class Loop(BaseLoop):
        def run(self):
            pass

    loop = Loop(None, torch.utils.data.DataLoader([0, 1]))  # no ann_file
    runner = SimpleNamespace(model=torch.nn.ModuleList([enc]),
                             _train_loop=loop)
    TrainDataToModelHook().before_run(runner)
    assert len(enc.vocab) == words
    # without a vocabulary of its own the encoder needs the files
    bare = BiGRUTextEncoder(word_dim=8, hidden_dim=8)
    runner.model = torch.nn.ModuleList([bare])
    with pytest.raises(ValueError, match='no ann_file'):
        TrainDataToModelHook().before_run(runner)


def test_hook_logs_one_line_with_counts_and_time(tmp_path):
    """The vocabulary and the object priors built from the training data
    are logged in one line with their counts, the files and the time."""
    from types import SimpleNamespace

    from mmengine.runner import BaseLoop

    from rsitr_mm.datasets.object_priors import build_object_priors
    from rsitr_mm.engine.hooks import TrainDataToModelHook
    from rsitr_mm.engine.hooks.train_data_to_model import \
        describe_train_state
    from rsitr_mm.models.backbones import BiGRUTextEncoder

    ann = generate_synthetic_dataset(
        str(tmp_path / 'd'), num_images=6, image_size=32, seed=0,
        split=(4, 1, 1), progress=False)

    class Loop(BaseLoop):
        def run(self):
            pass

    dataset = SimpleNamespace(ann_file=ann)
    loop = Loop(None, torch.utils.data.DataLoader([0, 1]))
    loop.dataloader = SimpleNamespace(dataset=dataset)
    lines = []
    enc = BiGRUTextEncoder(word_dim=8, hidden_dim=8)
    runner = SimpleNamespace(model=torch.nn.ModuleDict(dict(text=enc)),
                             _train_loop=loop,
                             logger=SimpleNamespace(info=lines.append))
    TrainDataToModelHook().before_run(runner)
    line, = lines
    words = len(Vocabulary.from_karpathy([ann]).idx2word)
    assert line.startswith(
        f'TrainDataToModelHook: built text: vocabulary of {words} words '
        f'from 1 annotation file(s) [{ann!r}] in ')
    assert line.endswith(' s')
    priors = build_object_priors([ann])
    head = SimpleNamespace(priors=priors, vocab=list(priors.vocab))
    assert describe_train_state(head) == (
        f'object priors of {priors.num_images} images x '
        f'{priors.num_nouns} nouns')
    assert priors.num_images == 4
