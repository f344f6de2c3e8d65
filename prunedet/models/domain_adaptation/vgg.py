"""torchvision's VGG-16 as an mmpretrain backbone: conv features + fc6/fc7.

Domain adaptation fine-tunes ImageNet weights, and the usual file is
torchvision's (``vgg16-397923af.pth``). The modules are therefore laid out and
named exactly like ``torchvision.models.vgg16`` (``features.*``,
``classifier.0`` = fc6, ``classifier.3`` = fc7), so that file loads with
``init_cfg=dict(type='Pretrained', checkpoint=PATH)``; its fc8
(``classifier.6``) is ignored as an unexpected key.

``widen_factor``, ``fc_channels`` and ``pool_size`` only exist to make a small
network of the same shape for CPU tests and demos; the defaults are VGG-16.
``batch_norm=True`` is torchvision's ``vgg16_bn`` (its file loads the same
way): without ImageNet weights, the plain VGG-16 sits at chance for hundreds
of iterations, long enough for an MMD term to collapse its features.
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS
from torchvision.models.vgg import cfgs, make_layers


@MODELS.register_module()
class TorchvisionVGG16(BaseModule):
    """VGG-16 (without BN unless ``batch_norm``), up to fc7 (after its ReLU
    and dropout).

    Args:
        widen_factor: multiplies every conv's channels.
        fc_channels: units of fc6 and fc7.
        pool_size: side of the adaptive average pooling before fc6 (7: the
            conv5 map of a 224x224 input passes unchanged).
        dropout: after fc6 and fc7.
        batch_norm: BN after every conv (``vgg16_bn``).
        init_cfg: e.g. ``dict(type='Pretrained', checkpoint=...)``. Without
            it convs are initialised like torchvision's VGG and fc6/fc7 with
            He's normal init on the fan-in: torchvision's fixed std of 0.01
            matches that only for the full-size fc6, and starves the signal
            of narrower variants trained from scratch.

    Returns (forward): a 1-tuple with the fc7 features ``(N, fc_channels)``.
    """

    def __init__(self,
                 widen_factor: float = 1.,
                 fc_channels: int = 4096,
                 pool_size: int = 7,
                 dropout: float = 0.5,
                 batch_norm: bool = False,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        arch = [
            v if v == 'M' else max(1, int(v * widen_factor))
            for v in cfgs['D']
        ]
        self.features = make_layers(arch, batch_norm=batch_norm)
        self.avgpool = nn.AdaptiveAvgPool2d(pool_size)
        self.classifier = nn.Sequential(
            nn.Linear(arch[-2] * pool_size**2, fc_channels),
            nn.ReLU(True),
            nn.Dropout(dropout),
            nn.Linear(fc_channels, fc_channels),
            nn.ReLU(True),
            nn.Dropout(dropout),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(
                    m.weight, mode='fan_out', nonlinearity='relu')
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight, nonlinearity='relu')
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor]:
        x = self.avgpool(self.features(x))
        return (self.classifier(torch.flatten(x, 1)), )
