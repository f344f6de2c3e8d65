"""VGG16 conv1_1 ... conv5_3 as an mmdet backbone (stride 16, no pool5).

mmdet 3.x has no VGG16 for Faster R-CNN. The layers are built with
torchvision's own ``make_layers``, so the module names are torchvision's
(``features.0`` is conv1_1, ``features.28`` conv5_3) and an ImageNet VGG16
state dict loads directly (``init_cfg=dict(type='Pretrained', checkpoint=...)``;
``classifier.*`` = fc6/fc7 are ignored here, see
``tools/model_converters/vgg16_to_faster_rcnn.py`` to carry them into the
bbox head).
"""
from typing import Optional

import torch.nn as nn
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torchvision.models.vgg import cfgs, make_layers


@MODELS.register_module()
class VGG16(BaseModule):
    """Args:
        with_bn: add BatchNorm after each conv (torchvision's vgg16_bn
            layout); needed to train from scratch.
        widen_factor: scale every layer's channels (1.0 is VGG16; smaller
            values only for quick CPU demos and tests).
        frozen_stages: freeze the first N conv blocks (the original Faster
            R-CNN fine-tunes from conv3_1 on, i.e. ``frozen_stages=2``).
    """

    def __init__(self,
                 with_bn: bool = False,
                 widen_factor: float = 1.0,
                 frozen_stages: int = 0,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg)
        layers = [
            v if v == 'M' else max(int(v * widen_factor), 1)
            for v in cfgs['D'][:-1]  # drop pool5: output stride 16
        ]
        self.features = make_layers(layers, batch_norm=with_bn)
        self.out_channels = layers[-1]
        self.frozen_stages = frozen_stages
        self._freeze()

    def _freeze(self) -> None:
        pools = [i for i, m in enumerate(self.features)
                 if isinstance(m, nn.MaxPool2d)]
        if self.frozen_stages <= 0:
            return
        end = pools[self.frozen_stages - 1] if self.frozen_stages <= len(
            pools) else len(self.features)
        for m in list(self.features)[:end]:
            m.eval()
            for p in m.parameters():
                p.requires_grad_(False)

    def train(self, mode: bool = True):
        super().train(mode)
        self._freeze()
        return self

    def forward(self, x):
        return (self.features(x), )
