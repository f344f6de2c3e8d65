"""Taylor expansion on activations (Molchanov et al. 2017).

Per feature map ``z`` (the output of each conv/linear layer producing the
group's channels, as in the public implementations) and per example, the
first-order change of the loss when the map is removed,
``|mean over positions of z * dL/dz|``; averaged over the batch, summed over
the steps since the last pruning step, and L2-normalised within the layer
(the paper's normalisation, which makes layers comparable in a global
ranking). Gathered from the normal training backward pass through tensor
hooks, so whatever loss the model optimises (detection, adaptation) is used;
what a backward pass sees is only committed when its optimizer step happens
(see :mod:`.base`).
"""
from typing import List

import torch

from prunedet.pruning.groups import ChannelGroup
from prunedet.registry import CRITERIA
from .base import BaseCriterion


@CRITERIA.register_module()
class TaylorActivation(BaseCriterion):
    uses_activations = True

    def __init__(self):
        super().__init__()
        self._handles: List = []

    def attach(self, groups) -> None:
        self.detach()
        for group in groups:
            for module in group.outputs:
                self._handles.append(
                    module.register_forward_hook(self._make_hook(group)))

    def detach(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _make_hook(self, group: ChannelGroup):

        def on_backward(grad, act):
            taylor = act * grad
            if taylor.dim() > 2:  # mean over spatial positions
                taylor = taylor.flatten(2).mean(2)
            self.observe(group, self.batch_score(taylor))

        def forward_hook(module, inputs, output):
            if module.training and torch.is_grad_enabled() \
                    and output.requires_grad:
                act = output.detach()
                output.register_hook(lambda g: on_backward(g, act))

        return forward_hook

    def batch_score(self, taylor: torch.Tensor) -> torch.Tensor:
        """One batch's contribution from the per-sample terms (N, C)."""
        return taylor.abs().mean(0)

    def __call__(self, group: ChannelGroup) -> torch.Tensor:
        score = self.accumulated(group)
        return score / score.norm().clamp_min(1e-12)
