"""Fold inference-mode BatchNorm into the convolution before it.

At inference a BN is an affine map per channel, so it can be absorbed into
the preceding conv's weights and bias: one op less per layer, in every
runtime. mmcv's ``fuse_conv_bn`` (what mmdet's ``--fuse-conv-bn`` uses) does
the folding; it pairs each BN with the conv registered just before it, which
is the data flow in mmcv's ``ConvModule``, torchvision's VGG and mmpretrain's
ResNets, but not in every model. So a folded model is always checked
against the original (:func:`prunedet.deploy.verify.check_close`).
"""
import copy

import torch
import torch.nn as nn
from mmcv.cnn import fuse_conv_bn

_BN = nn.modules.batchnorm._BatchNorm


def count_batchnorms(model: nn.Module) -> int:
    return sum(isinstance(m, _BN) for m in model.modules())


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """An eval-mode copy of ``model`` with every conv-BN pair folded; the
    original is left as it is. BNs not right after a conv stay."""
    folded = copy.deepcopy(model).eval()
    with torch.no_grad():
        fuse_conv_bn(folded)
    for p in folded.parameters():
        p.requires_grad_(False)
    return folded
