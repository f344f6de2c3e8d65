"""Taylor expansion on activations (Molchanov et al. 2017).

``|mean over positions of H * dL/dH|`` per channel and sample, averaged over
the batch, on the output of every conv/linear layer producing the group's
channels. Gathered during the normal training backward pass through tensor
hooks, so whatever loss the model optimises (detection, adaptation) is used.
"""
from typing import List

import torch

from prunedet.pruning.groups import ChannelGroup
from prunedet.registry import CRITERIA
from .base import BaseCriterion


@CRITERIA.register_module()
class TaylorActivation(BaseCriterion):

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
            self._accumulate(group, self.batch_score(taylor))

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
        return self.accumulated(group).cpu()
