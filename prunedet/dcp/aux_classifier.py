"""DCP stage 1: an image classifier trained with discrimination-aware losses.

Zhuang et al. (NeurIPS 2018) make intermediate layers discriminative before
pruning them: at P points of the network an auxiliary head
AvgPool(ReLU(BN(feature))) -> FC is trained with cross-entropy together with
the final loss. Stage 2 (:class:`~prunedet.engine.loops.DCPSelectionLoop`)
then selects each layer's input channels with the CE of the next head.

Weights of the auxiliary losses. The paper fine-tunes with ``L_S^p + L_f``
for one point at a time, i.e. weight 1. Its public code trains all points at
once, as here, and scales the gradient that the k-th loss sends into the
network by ``max(0.01, (L_k / L_K)^2)`` (``L_k`` the depth of point k,
``L_K`` that of the deepest point; from "The Shallow End", Guo et al.),
while each auxiliary FC learns from its loss unscaled. ``aux_weights`` are
these factors: the heads get their full gradient, the network the scaled one
(``None``: 1 for every point, the paper's sum). The configs under
``configs/dcp/`` give the code's values. The code's extra learning-rate
division by the summed weights, which needs one optimizer per loss, is left
out: here one optimizer steps on the summed gradients.

After stage 2, :meth:`DCPClassifier.drop_aux_heads` leaves a plain
``ImageClassifier``'s modules, so a stock classifier config loads the
pruned checkpoint.
"""
from typing import List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.models import ImageClassifier
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from prunedet.utils.modules import last_layer_up_to
from .features import capture, named

_CHANNEL_LAYERS = (nn.modules.conv._ConvNd, nn.modules.batchnorm._NormBase,
                   nn.GroupNorm, nn.Linear)


class AuxHead(nn.Module):
    """DCP's auxiliary classifier: BN -> ReLU -> global AvgPool -> FC."""

    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        self.in_channels = in_channels
        self.bn = nn.BatchNorm2d(in_channels)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(in_channels, num_classes)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn(x))
        return self.fc(x.mean((2, 3)))


class _ScaleGrad(torch.autograd.Function):
    """Identity forward; the gradient scaled by ``weight`` backward."""

    @staticmethod
    def forward(ctx, x, weight):
        ctx.weight = weight
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.weight, None


def out_channels_at(model: nn.Module, name: str) -> int:
    """Channels of the feature at module ``name``: those of the last
    conv/norm/linear layer registered up to the end of its subtree (its own
    layers, or the ones before a parameter-free pooling point)."""
    m = last_layer_up_to(model, name, _CHANNEL_LAYERS)
    if isinstance(m, nn.modules.conv._ConvNd):
        return m.out_channels
    if isinstance(m, nn.modules.batchnorm._NormBase):
        return m.num_features
    if isinstance(m, nn.GroupNorm):
        return m.num_channels
    if isinstance(m, nn.Linear):
        return m.out_features
    raise ValueError(f'cannot tell the channels of the feature at {name}; '
                     'give aux_channels')


@MODELS.register_module()
class DCPClassifier(ImageClassifier):
    """``ImageClassifier`` with DCP's auxiliary losses at ``aux_points``.

    Args:
        aux_points: module names (e.g. ``'backbone.layer1.2'``) whose outputs,
            (N, C, H, W) feature maps, feed an auxiliary head each; in
            forward order.
        aux_weights: scale of the gradient each auxiliary loss sends into
            the network (see the module doc); ``None``: all 1.
        aux_channels: channels at each point (default: read from the layers).
        num_classes: classes of the auxiliary heads (default: the head's or
            the backbone's ``num_classes``).
        Others: as for ``ImageClassifier``.
    """

    def __init__(self,
                 *args,
                 aux_points: Sequence[str],
                 aux_weights: Optional[Sequence[float]] = None,
                 aux_channels: Optional[Sequence[int]] = None,
                 num_classes: Optional[int] = None,
                 **kwargs):
        super().__init__(*args, **kwargs)
        if isinstance(aux_points, str) or not aux_points or len(
                set(aux_points)) != len(aux_points):
            raise ValueError('aux_points must be a non-empty list of distinct '
                             f'module names, got {aux_points!r}')
        named(self, aux_points, 'DCPClassifier: aux_points')
        count = len(aux_points)
        aux_weights = [1.] * count if aux_weights is None else list(
            aux_weights)
        if len(aux_weights) != count or any(
                not isinstance(w, (int, float)) or w < 0
                for w in aux_weights):
            raise ValueError(f'aux_weights must be {count} numbers >= 0 (one '
                             f'per aux point), got {aux_weights!r}')
        if aux_channels is None:
            aux_channels = [out_channels_at(self, n) for n in aux_points]
        elif len(aux_channels) != count:
            raise ValueError(f'aux_channels must give {count} channel counts, '
                             f'got {aux_channels!r}')
        num_classes = num_classes or getattr(self.head, 'num_classes', None) \
            or getattr(self.backbone, 'num_classes', None)
        if not num_classes:
            raise ValueError('DCPClassifier: give num_classes (neither the '
                             'head nor the backbone has one)')
        self.aux_points: List[str] = list(aux_points)
        self.aux_weights: List[float] = [float(w) for w in aux_weights]
        self.aux_heads = nn.ModuleList(
            AuxHead(c, num_classes) for c in aux_channels)

    @property
    def has_aux(self) -> bool:
        return hasattr(self, 'aux_heads')

    def aux_logits(self, index: int, feature: torch.Tensor) -> torch.Tensor:
        """Logits of auxiliary head ``index`` on its point's feature."""
        head = self.aux_heads[index]
        if feature.dim() != 4 or feature.shape[1] != head.in_channels:
            raise ValueError(
                f'aux point {self.aux_points[index]} gives a feature of shape '
                f'{tuple(feature.shape)}; its head expects (N, '
                f'{head.in_channels}, H, W) (set aux_channels, or choose a '
                'point that outputs a feature map)')
        return head(feature)

    def loss(self, inputs: torch.Tensor,
             data_samples: List[DataSample]) -> dict:
        """The final loss plus one CE per auxiliary head (``loss_aux{k}``,
        logged unweighted; the network gets its gradient scaled by
        ``aux_weights[k]``)."""
        if not self.has_aux:
            return super().loss(inputs, data_samples)
        points = named(self, self.aux_points, 'aux_points')
        with capture(points) as feats:
            final = self.extract_feat(inputs)
        missing = [n for k, n in enumerate(self.aux_points) if k not in feats]
        if missing:
            raise RuntimeError(f'the forward pass never ran the aux points '
                               f'{missing}')
        losses = self.head.loss(final, data_samples)
        labels = torch.cat([s.gt_label for s in data_samples])
        for k, weight in enumerate(self.aux_weights):
            feature = _ScaleGrad.apply(feats[k], weight)
            losses[f'loss_aux{k}'] = F.cross_entropy(
                self.aux_logits(k, feature), labels)
        return losses

    def drop_aux_heads(self) -> None:
        """Leave the modules of a plain ``ImageClassifier`` (after stage 2:
        the pruned checkpoint then loads in a stock classifier config)."""
        if self.has_aux:
            del self.aux_heads
        self.aux_points, self.aux_weights = [], []
