"""Criteria computed from the weight gradients of the ongoing training.

They need no extra forward or backward pass: right before every optimizer
step (after a loss scaler unscaled the gradients) the hook has them measure
the gradients, accumulated per channel until the next pruning step.
"""
import torch

from prunedet.pruning.groups import ChannelGroup
from prunedet.registry import CRITERIA
from .base import BaseCriterion


class _GradientCriterion(BaseCriterion):
    """Accumulates ``term(w, grad)`` summed per channel over the group.

    Args:
        include_consumers: also count the weights that read the channel
            (the next layer's input slices), not only the producers.
    """
    uses_gradients = True
    absolute_after_sum = False

    def __init__(self, include_consumers: bool = False):
        super().__init__()
        self.include_consumers = include_consumers

    @staticmethod
    def term(weight: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def measure(self, groups):
        values = {}
        with torch.no_grad():
            for group in groups:
                slices = group.producers + (
                    group.consumers if self.include_consumers else [])
                score = None
                for s in slices:
                    p = s.param
                    if p.grad is None:
                        continue
                    v = s.per_channel(self.term(p, p.grad), group.num_channels)
                    score = v if score is None else score + v
                if score is not None:
                    values[group.name] = score.float()
        return values

    def __call__(self, group: ChannelGroup) -> torch.Tensor:
        score = self.accumulated(group)
        return score.abs() if self.absolute_after_sum else score


@CRITERIA.register_module()
class GradientNorm(_GradientCriterion):
    """PGP's criterion ``TW = |dL/dW * W|``, summed over each filter and its
    coupled parameters, accumulated between pruning steps."""

    @staticmethod
    def term(weight, grad):
        return (weight * grad).abs()


@CRITERIA.register_module()
class TaylorWeight(_GradientCriterion):
    """The public PGP code's form: ``|sum over steps and over the filter of
    W * dL/dW|``, a first-order estimate of the loss change when the whole
    filter is removed (signed terms may cancel before the absolute value)."""
    absolute_after_sum = True

    @staticmethod
    def term(weight, grad):
        return weight * grad


@CRITERIA.register_module()
class GradientL1(_GradientCriterion):
    """RPGP's per-iteration ranking in the public code: the L1 norm of each
    filter's gradient from the ongoing training pass."""

    @staticmethod
    def term(weight, grad):
        return grad.abs()
