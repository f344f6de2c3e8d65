"""GAL's discriminator: is a logit vector the baseline's or the student's?"""
from typing import Sequence

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS


@MODELS.register_module()
class GALDiscriminator(BaseModule):
    """Fully connected layers of ``hidden`` units with ReLU (the paper:
    128-256-128), then one logit per sample.

    The output is a logit, used once by a BCE-with-logits loss; GAL's public
    code also applies a sigmoid before it (twice) and has no ReLU.
    """

    def __init__(self,
                 in_features: int,
                 hidden: Sequence[int] = (128, 256, 128),
                 init_cfg=None):
        super().__init__(init_cfg)
        if not hidden or any(int(h) < 1 for h in hidden):
            raise ValueError(f'GALDiscriminator: hidden must list layer '
                             f'widths >= 1, got {hidden!r}')
        layers, width = [], in_features
        for h in hidden:
            layers += [nn.Linear(width, int(h)), nn.ReLU(inplace=True)]
            width = int(h)
        layers.append(nn.Linear(width, 1))
        self.layers = nn.Sequential(*layers)

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        return self.layers(logits)
