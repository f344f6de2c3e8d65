"""Small builders shared by the tests."""
import torch
import torch.nn as nn
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS

from prunedet.pruning.groups import ChannelGraph
from prunedet.pruning.tracing import tensor_forward

CLASSIFIERS = {
    'vgg19':
    dict(
        backbone=dict(
            type='VGG', depth=19, norm_cfg=dict(type='BN'),
            out_indices=(4, )),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=10, in_channels=512)),
    'resnet20':
    dict(
        backbone=dict(type='CIFARResNet', depth=20),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=10, in_channels=64)),
    'lenet5':
    dict(
        backbone=dict(type='LeNet5', num_classes=10),
        neck=None,
        head=dict(type='ClsHead')),
}


def build_classifier(name: str):
    # mmpretrain's registry whatever an earlier test left as default scope
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(dict(type='ImageClassifier',
                                  **CLASSIFIERS[name]))
    channels = 1 if name == 'lenet5' else 3
    return model, torch.randn(4, channels, 32, 32)


def randomize_bn(model: nn.Module) -> None:
    """Non-trivial BN statistics and affine terms, so eval outputs depend on
    every one of them."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.)
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.uniform_(m.bias, -0.5, 0.5)


def graph_of(model, inputs, prunable=('backbone', )):
    return ChannelGraph(model, inputs, tensor_forward, prunable)
