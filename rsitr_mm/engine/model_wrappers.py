# Copyright (c) rsitr_mm contributors. All rights reserved.
"""A DDP wrapper that also works for CPU processes (gloo)."""
from mmengine.model import MMDistributedDataParallel
from mmengine.registry import MODEL_WRAPPERS


@MODEL_WRAPPERS.register_module()
class CPUFriendlyDDP(MMDistributedDataParallel):
    """``MMDistributedDataParallel`` that drops ``device_ids`` on CPU.

    mmengine's Runner always passes ``device_ids=[LOCAL_RANK]``, which
    ``DistributedDataParallel`` rejects for a module on the CPU. This wrapper
    keeps the GPU behaviour unchanged and lets ``tools/dist_train.sh`` run
    CPU processes on gloo (how CI tests the distributed path).

    Args:
        module (nn.Module): the model.
        device_ids (list[int], optional): GPU ids; ignored on CPU.
        **kwargs: passed to ``MMDistributedDataParallel``.
    """

    def __init__(self, module, device_ids=None, **kwargs) -> None:
        params = list(module.parameters())
        if params and params[0].device.type == 'cpu':
            device_ids = None
            kwargs.pop('output_device', None)
        super().__init__(module=module, device_ids=device_ids, **kwargs)
