# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Config preparation shared by ``tools/train.py`` and ``tools/test.py``."""
import functools
import logging
import os
import os.path as osp
import re
from copy import deepcopy
from typing import Dict, Optional

import torch
import torch.distributed as torch_dist
from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log


def cpus_per_process() -> int:
    """CPU cores this process may use: its affinity / local processes.

    ``LOCAL_WORLD_SIZE`` (set by ``torchrun``) processes share the node.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    local = max(1, int(os.environ.get('LOCAL_WORLD_SIZE', '1')))
    return max(1, cores // local)


def resolve_num_workers(num_workers, field: str = 'dataloader') -> int:
    """Size ``num_workers`` to the machine.

    ``'auto'`` becomes ``min(8, cpus_per_process() - 1)`` (one core stays
    with the training process); an int above :func:`cpus_per_process` is
    capped to it (more workers than cores only adds contention), with a
    log line.

    Args:
        num_workers (int | str): the configured value.
        field (str): config key, for messages.

    Returns:
        int: the number of workers to use.
    """
    cpus = cpus_per_process()
    if num_workers == 'auto':
        return max(0, min(8, cpus - 1))
    if not isinstance(num_workers, int) or num_workers < 0:
        raise ValueError(f'{field}.num_workers must be a non-negative int or '
                         f"'auto', got {num_workers!r}")
    if num_workers > cpus:
        print_log(
            f'{field}.num_workers={num_workers} capped to {cpus} (CPU cores '
            'available to this process)',
            logger='current')
        return cpus
    return num_workers


def set_dataloader_defaults(cfg: Config,
                            pin_memory: bool = True,
                            persistent_workers: bool = True) -> None:
    """Fill dataloader defaults, as mmpretrain's tools do.

    ``collate_fn=default_collate`` is always set when missing (mmengine's
    ``pseudo_collate`` silently builds a (C, B, H, W) batch with mmpretrain's
    data preprocessor). ``num_workers`` is sized to the machine
    (:func:`resolve_num_workers`; ``'auto'`` allowed). ``pin_memory`` is on
    with CUDA (the retriever's data preprocessor copies with
    ``non_blocking=True``). ``persistent_workers`` is only set when the
    loader has workers.
    """
    for field in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(field, None)
        if loader is None:
            continue
        merged = ConfigDict(
            pin_memory=pin_memory and torch.cuda.is_available(),
            collate_fn=dict(type='default_collate'))
        loader = deepcopy(loader)
        loader['num_workers'] = resolve_num_workers(
            loader.get('num_workers', 0), field)
        if loader['num_workers'] > 0:
            merged.persistent_workers = persistent_workers
        merged.update(loader)
        cfg[field] = merged


def apply_tf32(cfg: Config) -> None:
    """Apply ``env_cfg.allow_tf32`` (TF32 matmuls and convolutions on GPU).

    ``None`` (default) keeps PyTorch's defaults: TF32 off for matmuls, on
    for cuDNN convolutions. ``True``/``False`` sets both
    ``torch.backends.cuda.matmul.allow_tf32`` and
    ``torch.backends.cudnn.allow_tf32``. Switch it from the command line
    with ``--cfg-options env_cfg.allow_tf32=True``. No effect on the CPU.
    """
    allow = (cfg.get('env_cfg', None) or {}).get('allow_tf32', None)
    if allow is None:
        return
    if not isinstance(allow, bool):
        raise ValueError('env_cfg.allow_tf32 must be True, False or None, '
                         f'got {allow!r}')
    torch.backends.cuda.matmul.allow_tf32 = allow
    torch.backends.cudnn.allow_tf32 = allow


class CPUProcessCountFilter(logging.Filter):
    """Make mmengine's environment record true on a machine without GPUs.

    ``Runner._log_env`` always reports ``GPU number: <world size>``; on a
    CPU run that line names GPUs that do not exist. This filter rewrites
    exactly that line of exactly that record (the one holding ``Runtime
    environment:``) into ``Processes: N (CPU)`` or ``Processes: N (CPU,
    gloo)``; every other record passes unchanged.
    """

    _line = re.compile(r'^(\s*)GPU number: (\d+)$', re.MULTILINE)

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.msg
        if isinstance(msg, str) and 'Runtime environment:' in msg:
            what = 'CPU'
            if torch_dist.is_available() and torch_dist.is_initialized():
                what = f'CPU, {torch_dist.get_backend()}'
            record.msg = self._line.sub(rf'\1Processes: \2 ({what})', msg)
        return True


def describe_cpu_processes() -> None:
    """Install :class:`CPUProcessCountFilter` around ``Runner._log_env``.

    The filter is attached to the runner's logger only while the runner
    logs its environment, so no other record is touched. Idempotent;
    called by :func:`setup_launcher` when no GPU is usable.
    """
    from mmengine.runner import Runner
    original = Runner._log_env
    if getattr(original, '_rsitr_cpu_processes', False):
        return

    @functools.wraps(original)
    def _log_env(self, env_cfg: dict) -> None:
        log_filter = CPUProcessCountFilter()
        self.logger.addFilter(log_filter)
        try:
            original(self, env_cfg)
        finally:
            self.logger.removeFilter(log_filter)

    _log_env._rsitr_cpu_processes = True
    Runner._log_env = _log_env


def setup_launcher(cfg: Config, launcher: str) -> None:
    """Prepare ``cfg`` for ``launcher``, CPU-only machines included.

    With ``launcher='pytorch'`` (``torchrun``) and no usable GPU, mmengine
    would call ``torch.cuda.set_device`` and wrap the model with GPU
    ``device_ids``. Here we initialise a gloo process group ourselves (the
    Runner then skips its own init), select :class:`CPUFriendlyDDP` and set
    ``env_cfg.dist_cfg.backend='gloo'``, so the config the Runner logs and
    dumps says what runs. Without a GPU the Runner's environment record
    reports processes, not a "GPU number" (:func:`describe_cpu_processes`).
    With GPUs nothing changes (nccl, mmengine's defaults).
    """
    cfg.launcher = launcher
    if torch.cuda.is_available():
        return
    describe_cpu_processes()
    if launcher != 'pytorch':
        return
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(backend='gloo')
    env_cfg = dict(cfg.get('env_cfg', None) or {})
    env_cfg['dist_cfg'] = dict(env_cfg.get('dist_cfg', None) or {},
                               backend='gloo')
    cfg.env_cfg = env_cfg
    wrapper = dict(cfg.get('model_wrapper_cfg', None) or {})
    wrapper.setdefault('broadcast_buffers', False)
    wrapper.setdefault('find_unused_parameters',
                       cfg.get('find_unused_parameters', False))
    wrapper['type'] = 'CPUFriendlyDDP'
    cfg.model_wrapper_cfg = wrapper


def default_work_dir(cfg: Config, config_path: str,
                     work_dir: Optional[str]) -> None:
    """CLI ``--work-dir`` > ``work_dir`` in the file > ``work_dirs/<name>``."""
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config_path))[0])


def ensure_local_rank(local_rank: int) -> None:
    """Export ``LOCAL_RANK`` for launchers that pass ``--local-rank``."""
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(local_rank)


def format_retrieval_table(metrics: Dict[str, float]) -> str:
    """A Markdown table of the six recalls, mR and rsum.

    Args:
        metrics (dict): metric dict, keys with or without a prefix.

    Returns:
        str: the table.
    """
    short = {
        k.split('/')[-1]: v
        for k, v in metrics.items() if not k.startswith('rerank/')
    }
    cols = ['i2t_R@1', 'i2t_R@5', 'i2t_R@10', 't2i_R@1', 't2i_R@5',
            't2i_R@10', 'mR', 'rsum']
    present = [c for c in cols if c in short]
    head = '| ' + ' | '.join(present) + ' |'
    sep = '|' + '|'.join('---:' for _ in present) + '|'
    row = '| ' + ' | '.join(f'{short[c]:.2f}' for c in present) + ' |'
    rerank = {
        k.split('/')[-1]: v
        for k, v in metrics.items() if k.startswith('rerank/')
    }
    if rerank and all(c in rerank for c in present):
        # test_cfg.rerank set: raw and re-ranked rows
        return '\n'.join([
            '| scores ' + head, '|---' + sep, '| raw ' + row,
            '| re-ranked | ' + ' | '.join(f'{rerank[c]:.2f}'
                                          for c in present) + ' |'
        ])
    return '\n'.join([head, sep, row])


def finish_distributed() -> None:
    """End a multi-process run cleanly (nccl and gloo).

    nccl (GPUs): every rank reaches a barrier and destroys the process
    group, as PyTorch asks of every run (otherwise it warns at exit and may
    leak NCCL resources). Without a process group: nothing.

    gloo (CPU): seen here (torch 2.14, gloo, 2 processes): in about 1 run
    in 6 a rank aborted at interpreter shutdown with "terminate called
    without an active exception" after all work was done (a gloo thread
    still joinable while the process group is torn down), which makes
    torchrun report a failure. So once every rank has finished (barrier),
    we destroy the process group, flush logs and output, and leave with
    ``os._exit(0)``, skipping the teardown that aborts.
    """
    if not torch_dist.is_initialized():
        return
    if torch_dist.get_backend() != 'gloo':
        torch_dist.barrier()
        torch_dist.destroy_process_group()
        return
    import sys
    torch_dist.barrier()
    torch_dist.destroy_process_group()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


#: former name, kept for scripts that import it
finish_cpu_distributed = finish_distributed
