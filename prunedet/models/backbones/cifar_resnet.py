"""The classic CIFAR ResNets (He et al. 2016, section 4.2): ResNet-20/32/44/56/110.

mmpretrain's ``ResNet_CIFAR`` only offers the ImageNet depths with a CIFAR
stem. The classic family is the same network with three stages of 16/32/64
channels and 3n+2 layers, so it only needs other arch settings; downsampling
uses mmpretrain's projection shortcut (1x1 conv + BN, option B), which keeps
every channel coupling visible to the pruner.
"""
from mmpretrain.models.backbones.resnet import BasicBlock
from mmpretrain.models.backbones.resnet_cifar import ResNet_CIFAR
from mmpretrain.registry import MODELS


@MODELS.register_module()
class CIFARResNet(ResNet_CIFAR):
    """ResNet-(6n+2) for 32x32 inputs; output: the 64-channel stage-3 map."""

    arch_settings = {
        depth: (BasicBlock, ((depth - 2) // 6, ) * 3)
        for depth in (20, 32, 44, 56, 110)
    }

    def __init__(self,
                 depth: int,
                 stem_channels: int = 16,
                 base_channels: int = 16,
                 num_stages: int = 3,
                 strides=(1, 2, 2),
                 dilations=(1, 1, 1),
                 out_indices=(2, ),
                 **kwargs):
        if depth not in self.arch_settings:
            raise KeyError(f'invalid depth {depth} for CIFARResNet, choose '
                           f'from {sorted(self.arch_settings)}')
        super().__init__(
            depth,
            stem_channels=stem_channels,
            base_channels=base_channels,
            num_stages=num_stages,
            strides=strides,
            dilations=dilations,
            out_indices=out_indices,
            **kwargs)
