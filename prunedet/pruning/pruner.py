"""One pruning step: rank channels, pick the weakest, zero or remove them.

The hook decides *when* to prune and how much; :class:`ChannelPruner` decides
*which* channels go and applies the change to the model and its optimizers.

Soft and hard pruning: at each step the weakest channels needed to reach the
step's ratio are selected among all live channels (earlier soft-pruned ones
included, so they may recover). A selected channel is removed physically
when it has been selected ``soft_steps`` steps in a row before, when it is in
the weakest ``remove_ratio`` share of the step's selection, or at the last
step (``hard_at_end``); otherwise it is soft-pruned (zeroed, or re-initialised
as in the public PGP code) and keeps training. ``soft_steps=0`` is plain hard
pruning; ``soft_steps=None`` with ``remove_ratio=0`` is PSFP.
"""
import math
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional

import torch
from mmengine import dist
from torch.optim import Optimizer

from prunedet.criteria import BaseCriterion
from .flops import FlopsEstimate
from .groups import ChannelGraph, ChannelGroup
from .soft import SOFT_MODES, SOFT_PRUNE
from .surgery import remove_channels

TARGETS = ('channels', 'flops')


@dataclass
class StepResult:
    ratio: float
    soft: int
    hard: int
    channels: Dict[str, List[int]]  # group -> [kept now, original]


class ChannelPruner:
    """Selects and prunes channels of a :class:`ChannelGraph`.

    Args:
        graph: the model's channel groups.
        criterion: scores channels (higher is kept).
        target: ``'channels'`` (ratio of channels removed) or ``'flops'``
            (ratio of FLOPs removed, needs ``flops``).
        global_ranking: rank all groups together (scores normalised per
            group by their L2 norm) instead of the same ratio per group.
        min_channels: channels every group keeps at least.
        round_to: kept channels are rounded to a multiple of this.
        soft_steps, remove_ratio, soft_mode, hard_at_end: see module doc.
        flops: estimate of FLOPs for plans of kept channels.
        original: channels per group before any pruning (for resumed runs).
    """

    def __init__(self,
                 graph: ChannelGraph,
                 criterion: BaseCriterion,
                 target: str = 'channels',
                 global_ranking: bool = False,
                 min_channels: int = 1,
                 round_to: int = 1,
                 soft_steps: Optional[int] = 0,
                 remove_ratio: float = 0.,
                 soft_mode: str = 'zero',
                 hard_at_end: bool = True,
                 flops: Optional[FlopsEstimate] = None,
                 original: Optional[Dict[str, int]] = None):
        self.graph = graph
        self.criterion = criterion
        self.target = target
        self.global_ranking = global_ranking
        self.min_channels = min_channels
        self.round_to = round_to
        self.soft_steps = soft_steps
        self.remove_ratio = remove_ratio
        self.soft_mode = soft_mode
        self.hard_at_end = hard_at_end
        self.flops = flops
        self.groups: List[ChannelGroup] = []
        self.refresh()
        self.original = dict(original or
                             {g.name: g.num_channels
                              for g in self.groups})
        # consecutive steps each live channel has been selected
        self.streaks = {
            g.name: torch.zeros(g.num_channels, dtype=torch.long)
            for g in self.groups
        }

    def refresh(self) -> None:
        """Re-read the groups after the model changed shape."""
        self.groups = self.graph.groups()
        self.criterion.attach(self.groups)

    # --- planning -----------------------------------------------------

    def _round(self, keep: float, group: ChannelGroup) -> int:
        original = self.original[group.name]
        if self.round_to > 1:
            keep = math.ceil(keep / self.round_to) * self.round_to
        keep = max(int(round(keep)), self.min_channels)
        return min(keep, original, group.num_channels)

    def _uniform(self, ratio: float) -> Dict[str, int]:
        return {
            g.name: self._round(self.original[g.name] * (1. - ratio), g)
            for g in self.groups
        }

    def plan(self, ratio: float,
             scores: Dict[str, torch.Tensor]) -> Dict[str, int]:
        """Channels each group keeps after a step at ``ratio``."""
        if self.target == 'channels' and not self.global_ranking:
            return self._uniform(ratio)
        if self.target == 'flops' and not self.global_ranking:
            return self._uniform_for_flops(ratio)
        return self._global(ratio, scores)

    def _uniform_for_flops(self, ratio: float) -> Dict[str, int]:
        """Same channel ratio in every group, found by bisection so that the
        estimated FLOPs meet the target."""
        goal = (1. - ratio) * self.flops.original
        lo, hi = 0., 1.
        for _ in range(40):
            mid = (lo + hi) / 2
            if self.flops(self._uniform(mid)) > goal:
                lo = mid
            else:
                hi = mid
        return self._uniform(hi)

    def _global(self, ratio: float,
                scores: Dict[str, torch.Tensor]) -> Dict[str, int]:
        """Drop the globally weakest channels (scores normalised per group)
        until the channel or FLOPs target is met."""
        keep = {g.name: g.num_channels for g in self.groups}
        floor = {g.name: self._round(0, g) for g in self.groups}
        order = []
        for g in self.groups:
            s = scores[g.name].double()
            s = s / (s.norm() + 1e-12)
            order += [(v, g.name) for v in s.sort().values.tolist()]
        order.sort(key=lambda x: x[0])
        if self.target == 'flops':
            goal = (1. - ratio) * self.flops.original
            current = self.flops(keep)
            done = lambda: current <= goal  # noqa: E731
        else:
            goal = round(sum(self.original.values()) * (1. - ratio))
            done = lambda: sum(keep.values()) <= goal  # noqa: E731
        for _, name in order:
            if done():
                break
            if keep[name] > floor[name]:
                if self.target == 'flops':
                    current -= self.flops.saving_per_channel(keep, name)
                keep[name] -= 1
        return {
            g.name: self._round(keep[g.name], g)
            for g in self.groups
        }

    # --- applying -----------------------------------------------------

    def scores(self) -> Dict[str, torch.Tensor]:
        """Criterion scores, averaged over distributed ranks so that every
        rank removes the same channels."""
        scores = {g.name: self.criterion(g).float() for g in self.groups}
        if dist.get_world_size() > 1:
            for s in scores.values():
                dist.all_reduce(s, op='mean')
        return scores

    def step(self,
             ratio: float,
             last: bool = False,
             optimizers: Iterable[Optimizer] = ()) -> StepResult:
        optimizers = list(optimizers)
        scores = self.scores()
        keep = self.plan(ratio, scores)
        n_soft = n_hard = 0
        changed = False
        for group in self.groups:
            drop_count = group.num_channels - keep[group.name]
            ranked = torch.sort(scores[group.name], stable=True).indices
            drop = ranked[:max(drop_count, 0)]
            streak = self.streaks[group.name]
            selected = torch.zeros_like(streak, dtype=torch.bool)
            selected[drop] = True
            streak = torch.where(selected, streak + 1, 0)
            hard = self._hard_mask(drop, streak, last)
            soft_idx, hard_idx = drop[~hard], drop[hard]
            if len(soft_idx):
                self._soft_prune(group, soft_idx, optimizers)
            if len(hard_idx):
                kept = torch.ones_like(selected)
                kept[hard_idx] = False
                streak = streak[kept]
                remove_channels(self.graph, group, hard_idx.tolist(),
                                optimizers)
                changed = True
            self.streaks[group.name] = streak
            n_soft += len(soft_idx)
            n_hard += len(hard_idx)
        if changed:
            self.refresh()
        self.criterion.reset()
        return StepResult(ratio, n_soft, n_hard, self.channels())

    def _hard_mask(self, drop: torch.Tensor, streak: torch.Tensor,
                   last: bool) -> torch.Tensor:
        """Which of ``drop`` (weakest first) are removed now."""
        if last and self.hard_at_end:
            return torch.ones(len(drop), dtype=torch.bool)
        hard = torch.zeros(len(drop), dtype=torch.bool)
        if self.soft_steps is not None:
            hard |= streak[drop] > self.soft_steps
        hard[:math.ceil(self.remove_ratio * len(drop))] = True
        return hard

    def _soft_prune(self, group: ChannelGroup, channels: torch.Tensor,
                    optimizers: List[Optimizer]) -> None:
        SOFT_PRUNE[self.soft_mode](group, channels, optimizers)

    def channels(self) -> Dict[str, List[int]]:
        return {
            g.name: [g.num_channels, self.original[g.name]]
            for g in self.groups
        }

    def state_dict(self) -> dict:
        return {
            'original': dict(self.original),
            'streaks': {k: v.clone()
                        for k, v in self.streaks.items()},
            'criterion': self.criterion.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.original.update(state.get('original', {}))
        for name, streak in state.get('streaks', {}).items():
            if name in self.streaks and len(streak) == len(
                    self.streaks[name]):
                self.streaks[name] = streak.clone()
        self.criterion.load_state_dict(state.get('criterion', {}))
