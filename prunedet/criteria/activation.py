"""Taylor expansion on activations (Molchanov et al. 2017).

Per feature map ``z`` and per example, the first-order change of the loss
when the map is removed, ``|mean over positions of z * dL/dz|``; averaged
over the batch, summed over the steps since the last pruning step, and
L2-normalised within the layer (the paper's normalisation, which makes
layers comparable in a global ranking).

``z`` is the map *after the channel's norm and activation*, as in the paper
(whose networks had no norm layers). The conv output is the wrong place
behind a BN in train mode: BN removes the batch mean and scale of its input,
so the batch sum of ``x * dL/dx`` there is identically zero and only
per-example noise is left. The point is found from the data flow of each
training pass, not from module names: starting at the layer producing the
group's channels, the map is followed through the norm layer and the
activation module that take it as their input (``conv -> BN -> ReLU``,
``linear -> ReLU``, ``conv -> Tanh``). Where the activation is a function
call rather than a module, or comes after a residual sum, the map after the
norm is used; for the ReLU family this is exact anyway, since
``relu(y) * dL/drelu(y) == y * dL/dy`` elementwise.

Gathered from the normal training backward pass through tensor hooks, so
whatever loss the model optimises (detection, adaptation) is used; what a
backward pass sees is only committed when its optimizer step happens (see
:mod:`.base`).
"""
import weakref
from typing import List, Optional

import torch
import torch.nn as nn
from mmcv.cnn.bricks import HSigmoid, HSwish, Swish

from prunedet.pruning.groups import ChannelGroup
from prunedet.registry import CRITERIA
from .base import BaseCriterion

NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm)
ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.ELU,
               nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish, nn.Hardswish,
               nn.Hardsigmoid, nn.Hardtanh, nn.Sigmoid, nn.Tanh, nn.Softplus,
               Swish, HSwish, HSigmoid)


class _Map:
    """One group's feature map in one forward pass; ``final`` until the map
    is followed into the next module (a norm, then an activation)."""

    def __init__(self, group: ChannelGroup, output: torch.Tensor,
                 stage: int):
        self.group = group
        self.tensor = weakref.ref(output)
        self.stage = stage  # 0: layer output, 1: after the norm, 2: after act
        self.final = True
        self.act = output.detach()


@CRITERIA.register_module()
class TaylorActivation(BaseCriterion):
    uses_activations = True

    def __init__(self):
        super().__init__()
        self._handles: List = []
        # id(tensor) -> its map; an entry lives as long as the autograd graph
        # holding the map's backward hook
        self._maps = weakref.WeakValueDictionary()

    def attach(self, groups, model: Optional[nn.Module] = None) -> None:
        """Observe the layers producing each group's channels and, in
        ``model``, the norm and activation modules that follow them."""
        self.detach()
        for group in groups:
            for module in group.outputs:
                self._handles.append(
                    module.register_forward_hook(self._make_hook(group)))
        if model is not None:
            for module in model.modules():
                stage = 1 if isinstance(module, NORMS) else \
                    2 if isinstance(module, ACTIVATIONS) else 0
                if stage:
                    self._handles.append(
                        module.register_forward_hook(self._make_follow(stage)))

    def detach(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._maps = weakref.WeakValueDictionary()

    def _track(self, group: ChannelGroup, output: torch.Tensor,
               stage: int) -> None:
        tracked = _Map(group, output, stage)
        key = id(output)
        self._maps[key] = tracked

        # The hook must not hold ``output``: output -> grad_fn -> hook ->
        # output is a cycle through C++ that the garbage collector cannot
        # see, and it would keep every tracked map (and its autograd graph)
        # alive for the rest of the run. The map is released once used, so
        # that a graph the caller keeps after backward (mmengine holds the
        # step's outputs until after_train_iter, where a prune event runs)
        # does not keep it either.
        def on_backward(grad):
            if tracked.final and tracked.act is not None:
                taylor = tracked.act * grad
                if taylor.dim() > 2:  # mean over spatial positions
                    taylor = taylor.flatten(2).mean(2)
                self.observe(tracked.group, self.batch_score(taylor))
            tracked.act = None
            if self._maps.get(key) is tracked:
                del self._maps[key]

        output.register_hook(on_backward)

    def _make_hook(self, group: ChannelGroup):

        def forward_hook(module, inputs, output):
            if module.training and torch.is_grad_enabled() and \
                    isinstance(output, torch.Tensor) and output.requires_grad:
                self._track(group, output, 0)

        return forward_hook

    def _make_follow(self, stage: int):

        def forward_hook(module, inputs, output):
            if not inputs or not isinstance(output, torch.Tensor):
                return
            source = self._maps.get(id(inputs[0]))
            # the same tensor object (an id is reused once its tensor is
            # freed), a step further along conv -> norm -> act, same shape
            if source is None or source.tensor() is not inputs[0] or \
                    source.stage >= stage or \
                    output.shape != inputs[0].shape or \
                    not output.requires_grad:
                return
            source.final, source.act = False, None  # scored further along
            self._track(source.group, output, stage)

        return forward_hook

    def batch_score(self, taylor: torch.Tensor) -> torch.Tensor:
        """One batch's contribution from the per-sample terms (N, C)."""
        return taylor.abs().mean(0)

    def __call__(self, group: ChannelGroup) -> torch.Tensor:
        score = self.accumulated(group)
        return score / score.norm().clamp_min(1e-12)
