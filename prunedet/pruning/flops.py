"""FLOPs: measured with ``mmengine.analysis``, estimated for pruning plans.

Measuring means a traced forward pass, too slow to run for every candidate
plan. But a conv's, linear's or norm's count is proportional to the fraction
of its input channels kept times the fraction of its output channels kept, so
one measurement per layer gives an exact estimate for any plan of channel
counts (operators outside the groups keep their cost).
"""
from typing import Callable, Dict, Iterable, List, Optional, Tuple

import torch
import torch.nn as nn
from mmengine.analysis import FlopAnalyzer

from .groups import ChannelGroup


class _Forward(nn.Module):
    """Give ``forward_fn(model, inputs)`` the module interface jit needs."""

    def __init__(self, model: nn.Module, forward_fn: Callable):
        super().__init__()
        self.model = model
        self.forward_fn = forward_fn

    def forward(self, inputs):
        return self.forward_fn(self.model, inputs)


def measure_flops(model: nn.Module, inputs: torch.Tensor,
                  forward_fn: Callable) -> Tuple[int, Dict[str, int]]:
    """Total FLOPs (multiply-adds, as mmengine counts them) and per layer."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            analyzer = FlopAnalyzer(_Forward(model, forward_fn), (inputs, ))
            analyzer.unsupported_ops_warnings(False)
            analyzer.uncalled_modules_warnings(False)
            analyzer.tracer_warnings('none')
            total = analyzer.total()
            per_layer = {
                name[len('model.'):]: count
                for name, count in analyzer.by_module().items()
                if name.startswith('model.')
            }
    finally:
        model.train(was_training)
    return total, per_layer


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


Sides = Dict[str, List[Tuple[str, float]]]


def layer_sides(groups: Iterable[ChannelGroup]) -> Dict[str, Sides]:
    """``{layer: {'out': [(group, share)], 'in': [...]}}``: the groups
    that hold each side's channels, with the share of the side each holds
    (a layer reading a concat of two branches holds a part of each)."""
    sides: Dict[str, Sides] = {}
    for group in groups:
        for layer, held in group.members.items():
            for side, share in held.items():
                sides.setdefault(layer, {'out': [], 'in': []})[side].append(
                    (group.name, share))
    return sides


def kept_fraction(change: Dict[str, float],
                  parts: List[Tuple[str, float]]) -> float:
    """A side's kept fraction: the fixed part plus each group's share times
    its kept fraction (``change``: each group's kept fraction minus 1)."""
    return 1. + sum(share * change[group] for group, share in parts)


class FlopsEstimate:
    """FLOPs as a function of the channels kept per group.

    A layer's count scales with the fraction of its output channels kept
    times the fraction of its input channels kept. Either side may hold
    channels of several groups (a conv reading a concat of two branches, a
    norm layer after it) and some that no group prunes; its fraction is the
    fixed part plus each group's share times that group's kept fraction.

    Args:
        total: measured FLOPs of the model as it is now.
        per_layer: measured FLOPs per layer name.
        groups: the current groups (their channel counts are the reference).
        original: FLOPs before any pruning (default: ``total``).
    """

    def __init__(self,
                 total: int,
                 per_layer: Dict[str, int],
                 groups: Iterable[ChannelGroup],
                 original: Optional[float] = None):
        self.original = float(original if original is not None else total)
        groups = list(groups)
        self.reference = {g.name: g.num_channels for g in groups}
        # (flops, groups of the layer's output, groups of its input)
        self.terms = []
        self.fixed = float(total)
        for layer, side in layer_sides(groups).items():
            flops = per_layer.get(layer, 0)
            self.fixed -= flops
            if flops:
                self.terms.append((flops, side['out'], side['in']))
        # the groups the terms read (planning calls this many times a step)
        self._groups = list(dict.fromkeys(
            group for _, out, inp in self.terms for group, _ in out + inp))

    def __call__(self, keep: Dict[str, int]) -> float:
        """Estimated FLOPs with ``keep[group]`` channels in each group."""
        # each group's kept fraction minus 1, computed once per call
        change = {g: keep[g] / self.reference[g] - 1. for g in self._groups}
        part = kept_fraction
        return self.fixed + sum(
            flops * part(change, out) * part(change, inp)
            for flops, out, inp in self.terms)

    def saving_per_channel(self, keep: Dict[str, int], group: str) -> float:
        """FLOPs saved by removing one more channel of ``group``."""
        less = dict(keep)
        less[group] -= 1
        return self(keep) - self(less)
