"""GoogLeNet for 32x32 inputs, the CIFAR-10 network GAL prunes.

mmpretrain has no GoogLeNet. This is the common CIFAR variant (the one in
GAL's public code): a 3x3 stem of 192 channels, Inception 3a-3b, max-pool,
4a-4e, max-pool, 5a-5b, every conv followed by BN and ReLU; the "5x5" branch
is two 3x3 convs. About 6.2M parameters and 1.5G FLOPs at 32x32.

Each Inception module keeps its four branches in a ``ModuleDict``
(``b1x1``, ``b3x3``, ``b5x5``, ``pool``) and concatenates whatever it holds,
so a branch can be deleted (GAL removes branches whose mask reached zero)
without changing the module's code.
"""
from typing import Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS

# in_channels follow from the previous module; per module: 1x1, 3x3 reduce,
# 3x3, 5x5 reduce, 5x5, pool projection
INCEPTIONS = {
    'a3': (64, 96, 128, 16, 32, 32),
    'b3': (128, 128, 192, 32, 96, 64),
    'a4': (192, 96, 208, 16, 48, 64),
    'b4': (160, 112, 224, 24, 64, 64),
    'c4': (128, 128, 256, 24, 64, 64),
    'd4': (112, 144, 288, 32, 64, 64),
    'e4': (256, 160, 320, 32, 128, 128),
    'a5': (256, 160, 320, 32, 128, 128),
    'b5': (384, 192, 384, 48, 128, 128),
}
POOL_AFTER = ('b3', 'e4')


class Inception(BaseModule):
    """Four branches on the same input, concatenated along channels.

    No attribute mirrors a channel count: the counts live in the weights
    alone, so they stay true when branches or channels are removed.
    """

    def __init__(self, in_channels: int, widths: Sequence[int],
                 norm_cfg: dict, act_cfg: dict):
        super().__init__()
        n1x1, n3x3red, n3x3, n5x5red, n5x5, pool_planes = widths

        def conv(cin, cout, kernel):
            return ConvModule(
                cin,
                cout,
                kernel,
                padding=kernel // 2,
                norm_cfg=norm_cfg,
                act_cfg=act_cfg)

        self.branches = nn.ModuleDict(
            dict(
                b1x1=conv(in_channels, n1x1, 1),
                b3x3=nn.Sequential(
                    conv(in_channels, n3x3red, 1), conv(n3x3red, n3x3, 3)),
                b5x5=nn.Sequential(
                    conv(in_channels, n5x5red, 1), conv(n5x5red, n5x5, 3),
                    conv(n5x5, n5x5, 3)),
                pool=nn.Sequential(
                    nn.MaxPool2d(3, stride=1, padding=1),
                    conv(in_channels, pool_planes, 1))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.branches.values()], 1)


@MODELS.register_module()
class CIFARGoogLeNet(BaseModule):
    """GoogLeNet for 32x32 images; output: the last (N, 1024, 8, 8) map.

    Args:
        in_channels: image channels.
        stem_channels: channels of the 3x3 stem conv.
        widen_factor: scales every layer (1.0 is GoogLeNet; smaller values
            only for tests).
    """

    def __init__(self,
                 in_channels: int = 3,
                 stem_channels: int = 192,
                 widen_factor: float = 1.0,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU'),
                 init_cfg=None):
        super().__init__(init_cfg)

        def width(c):
            return max(int(c * widen_factor), 1)

        channels = width(stem_channels)
        self.stem = ConvModule(
            in_channels,
            channels,
            3,
            padding=1,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg)
        layers = []
        for name, widths in INCEPTIONS.items():
            widths = [width(c) for c in widths]
            layers.append((f'inception_{name}',
                           Inception(channels, widths, norm_cfg, act_cfg)))
            channels = sum(widths[i] for i in (0, 2, 4, 5))
            if name in POOL_AFTER:
                layers.append((f'pool_{name}', nn.MaxPool2d(3, 2, 1)))
        for name, layer in layers:
            self.add_module(name, layer)
        self.layer_names = [name for name, _ in layers]

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor]:
        x = self.stem(x)
        for name in self.layer_names:
            x = getattr(self, name)(x)
        return (x, )
