# Copyright (c) rsitr_mm contributors. All rights reserved.
from typing import Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS

from ...utils.validation import check_values


@MODELS.register_module()
class TinyCNN(BaseModule):
    """A small CNN image backbone for fast CPU demos and tests.

    Each stage is ``conv3x3(stride 2)-BN-ReLU`` followed by
    ``conv3x3-BN-ReLU``, so stage ``i`` outputs ``base_channels * 2**i``
    channels at ``1 / 2**(i + 1)`` of the input resolution. Like
    mmpretrain's ResNet, ``forward`` returns a tuple with the maps of
    ``out_indices``.

    Args:
        in_channels (int): Input channels. Defaults to 3.
        base_channels (int): Channels of the first stage. Defaults to 32.
        num_stages (int): Number of stages. Defaults to 3.
        out_indices (Sequence[int]): Stages to return (negative indices
            allowed). Defaults to ``(0, 1, 2)``.
        init_cfg (dict, optional): mmengine init config. Defaults to Kaiming
            init for convolutions.
    """

    def __init__(self,
                 in_channels: int = 3,
                 base_channels: int = 32,
                 num_stages: int = 3,
                 out_indices: Union[int, Sequence[int]] = (0, 1, 2),
                 init_cfg=dict(
                     type='Kaiming', layer='Conv2d', nonlinearity='relu')):
        check_values('TinyCNN', in_channels=(in_channels, 'int>=1'),
                     base_channels=(base_channels, 'int>=1'),
                     num_stages=(num_stages, 'int>=1'))
        super().__init__(init_cfg=init_cfg)
        if isinstance(out_indices, int):
            out_indices = [out_indices]
        indices = []
        for i in out_indices:
            j = i + num_stages if i < 0 else i
            if not 0 <= j < num_stages:
                raise ValueError(f'out_indices entry {i} is out of range for '
                                 f'{num_stages} stages.')
            indices.append(j)
        self.out_indices = tuple(sorted(set(indices)))
        self.stages = nn.ModuleList()
        channels = []
        c_in = in_channels
        for i in range(num_stages):
            c_out = base_channels * 2**i
            self.stages.append(
                nn.Sequential(
                    nn.Conv2d(c_in, c_out, 3, 2, 1, bias=False),
                    nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
                    nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False),
                    nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)))
            channels.append(c_out)
            c_in = c_out
        self.stage_channels = channels
        self.out_channels = [channels[i] for i in self.out_indices]

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Args:
            x (Tensor): (B, in_channels, H, W).

        Returns:
            tuple[Tensor]: For each of ``out_indices``, a map of shape
            (B, base_channels * 2**i, ceil(H / 2**(i+1)), ...).
        """
        outs = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)
