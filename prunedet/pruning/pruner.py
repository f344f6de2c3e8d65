"""One pruning step: rank channels, pick the weakest, soft-prune or remove.

The hook decides *when* to prune and how much; :class:`ChannelPruner` decides
*which* channels go and applies the change to the model and its optimizers.

Soft and hard pruning: at each step the weakest channels needed to reach the
step's ratio are selected among all live channels, soft-pruned ones included.
A soft-pruned channel that regrew is not selected again: it *recovers* (each
step reports how many did). A selected channel is removed physically when it
was selected ``soft_steps`` steps in a row before, when it is in the weakest
``remove_ratio`` share of the step's selection, or at the last step
(``hard_at_end``); otherwise it is soft-pruned (:mod:`.soft`) and keeps
training. ``soft_steps=0`` is plain hard pruning; ``soft_steps=None`` with
``remove_ratio=0`` is PSFP.

A step only uses scores it can trust: a data-driven criterion that gathered
no statistics since the last step (every optimizer step was skipped or
non-finite), or any non-finite score, postpones the step; a group whose
scores are all zero (a dead or collapsed layer, whose ranking would be
arbitrary) keeps its channels for that step, with a warning.

Distributed training: scores are averaged over ranks, the step's plan is
decided once on rank 0 and broadcast, and every rank applies the same plan,
so no per-rank quantity can make ranks cut different channels.

Latency target (``target='latency'``): the estimate is a per-layer latency
table (:mod:`.latency_table`), and the global plan is HALP's knapsack
(Shen et al. 2022: keep the most importance within a latency budget) solved
greedily: the cut goes, a unit at a time (one channel, or ``round_to``),
to the group whose next unit has the least importance per second it saves.
The table is timed layer by layer and calibrated at half width, so at the
last step the plan itself is timed (a copy at the plan beside the model,
``latency_timer``) and, if it misses, planned again further along the same
greedy path, at the estimate that a secant through the plans timed so far
says will measure the target; up to ``latency_rounds`` plans, or until one
measures within ``latency_tolerance`` of the target. The plan timed closest
to it is applied, and the table's layers are rescaled so that it predicts
what that plan measured.
"""
import heapq
import math
import warnings
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional

import torch
from mmengine import dist
from torch.optim import Optimizer

from prunedet.criteria import BaseCriterion
from .flops import FlopsEstimate
from .groups import ChannelGraph, ChannelGroup
from .phases import phase
from .soft import SOFT_MODES, SOFT_PRUNE, can_regrow, hold_masked, release
from .surgery import remove_channels

TARGETS = ('channels', 'flops', 'latency')
__all__ = ['ChannelPruner', 'StepResult', 'UnreachableTargetError',
           'TARGETS', 'SOFT_MODES']


def _secant(points, goal: float) -> float:
    """The estimated latency at which the measured one should be ``goal``:
    linear between the nearest timed plans on either side of it, or
    through the two deepest plans when none measured under it (the
    measured latency grows with the estimate along one greedy path)."""
    points = sorted(points)
    under = [p for p in points if p[1] < goal]
    over = [p for p in points if p[1] >= goal]
    if under and over:
        (e0, m0), (e1, m1) = max(under, key=lambda p: p[1]), \
            min(over, key=lambda p: p[1])
    else:
        (e0, m0), (e1, m1) = points[:2]
    if m1 - m0 <= 1e-9 or e1 <= e0:  # noise: scale the deepest plan
        e0, m0 = points[0]
        return e0 * goal / m0
    return e0 + (goal - m0) * (e1 - e0) / (m1 - m0)


class UnreachableTargetError(ValueError):
    """The prunable layers cannot reach the target with these options."""


@dataclass
class StepResult:
    ratio: float
    soft: int = 0
    hard: int = 0
    recovered: int = 0  # soft-pruned at the last step, not selected now
    regrowable: int = 0  # of this step's zeroed channels, those that can
    channels: Dict[str, List[int]] = field(default_factory=dict)
    postponed: Optional[str] = None  # why nothing was pruned
    dead: List[str] = field(default_factory=list)  # all-zero scores
    # last step of a latency target: (estimated, measured) latency ratio of
    # each plan timed, in order
    timed: List[List[float]] = field(default_factory=list)
    # what the plan cut measured (share of the original latency), if timed
    measured_latency: Optional[float] = None


class ChannelPruner:
    """Selects and prunes channels of a :class:`ChannelGraph`.

    Args:
        graph: the model's channel groups.
        criterion: scores channels (higher is kept).
        target: ``'channels'`` (ratio of channels removed), ``'flops'``
            (ratio of FLOPs removed, needs ``flops``) or ``'latency'``
            (ratio of latency removed, needs ``latency``).
        global_ranking: rank all groups together (scores normalised per
            group by their L2 norm) instead of the same ratio per group.
        min_channels: channels every group keeps at least.
        round_to: kept channels are rounded to a multiple of this.
        soft_steps, remove_ratio, hard_at_end: see the module doc.
        soft_mode: ``'zero'``, ``'reinit'`` or ``'mask'`` (:mod:`.soft`).
        flops: estimate of FLOPs for plans of kept channels.
        latency: estimate of latency for them (a
            :class:`~.latency_table.LatencyEstimate`, or any object with
            its interface).
        latency_timer: ``timer(groups, keep) -> latency of the model at
            plan keep over the model now``, measured
            (:class:`~.latency_table.PlanTimer`): the last step of a latency
            target corrects the table with it (see the module doc).
        latency_rounds: plans timed at that step, at most.
        latency_tolerance: a timed plan this close to the target (a share
            of the original latency) ends the rounds.
        layer_ratios: ``{layer: share}``: the group of each named layer
            loses that share of its channels at the end, whatever the
            target asks of the others (Torch-Pruning's
            ``pruning_ratio_dict``); reached along the schedule as
            ``final_ratio`` is. The other groups are planned to the target
            around them.
        final_ratio: the schedule's target (default: each step is the
            last).
        original: channels per group before any pruning (for resumed runs).
        generator: draws ``'reinit'``'s and a mask release's fresh weights
            (default: torch's global generator).
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
                 latency=None,
                 latency_timer=None,
                 latency_rounds: int = 4,
                 latency_tolerance: float = .01,
                 layer_ratios: Optional[Dict[str, float]] = None,
                 final_ratio: Optional[float] = None,
                 original: Optional[Dict[str, int]] = None,
                 generator: Optional[torch.Generator] = None):
        if target not in TARGETS:
            raise ValueError(f'target must be one of {TARGETS}, got {target!r}')
        if target in ('flops', 'latency') and \
                {'flops': flops, 'latency': latency}[target] is None:
            raise ValueError(f'target={target!r} needs an estimate of the '
                             f'{target} ({target}=...)')
        if soft_mode not in SOFT_MODES:
            raise ValueError(
                f'soft_mode must be one of {SOFT_MODES}, got {soft_mode!r}')
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
        self.latency = latency
        self.latency_timer = latency_timer
        self.latency_rounds = latency_rounds
        self.latency_tolerance = latency_tolerance
        self.generator = generator
        self.final_ratio = final_ratio
        self.groups: List[ChannelGroup] = []
        self.refresh()
        self._layer_shares = self._group_shares(layer_ratios or {})
        self._pins: Dict[str, int] = {}
        self.original = dict(original or
                             {g.name: g.num_channels
                              for g in self.groups})
        wrong = [
            f'{g.name} ({self.original.get(g.name)} < {g.num_channels})'
            for g in self.groups
            if not self.original.get(g.name, 0) >= g.num_channels
        ]
        if wrong:
            raise ValueError(
                'the resumed pruning state (checkpoint field '
                'pruning.original) has fewer channels before pruning than '
                f'the model has now, or none: {wrong[:5]}')

        def per_channel(dtype):
            return {
                g.name: torch.zeros(g.num_channels, dtype=dtype)
                for g in self.groups
            }

        # consecutive steps each live channel has been selected
        self.streaks = per_channel(torch.long)
        # soft-pruned at the last step (in 'mask' mode: held at zero)
        self.soft = per_channel(torch.bool)
        # soft-pruned at some step (to count those that were kept)
        self.ever_soft = per_channel(torch.bool)

    def _group_shares(self, layer_ratios: Dict[str, float]
                      ) -> Dict[str, float]:
        """``layer_ratios`` by group name; a layer that no group holds, or a
        share outside [0, 1), is an error naming it."""
        owner = {m: g.name for g in self.groups
                 for m, sides in g.members.items() if 'out' in sides}
        unknown = [n for n in layer_ratios if n not in owner]
        if unknown:
            raise ValueError(
                f'layer_ratios names layers that no prunable channel group '
                f'holds: {unknown}; prunable groups: '
                f'{[g.name for g in self.groups][:8]} ...')
        shares = {}
        for name, share in layer_ratios.items():
            if isinstance(share, bool) or not isinstance(share, (int, float)) \
                    or not 0. <= share < 1.:
                raise ValueError(f'layer_ratios[{name!r}] must be a share in '
                                 f'[0, 1), got {share!r}')
            if shares.setdefault(owner[name], share) != share:
                raise ValueError(f'layer_ratios gives {owner[name]}\'s group '
                                 'two different shares')
        return shares

    @property
    def estimate(self):
        """What the target is a share of, for plans of kept channels
        (``None`` for the channel count)."""
        return {'flops': self.flops, 'latency': self.latency}.get(self.target)

    def refresh(self) -> None:
        """Re-read the groups after the model changed shape."""
        self.groups = self.graph.groups()
        self.criterion.attach(self.groups, self.graph.model)

    # --- checking the options against the model -------------------------

    def check(self, target_ratio: float) -> None:
        """Fail before training if the options cannot work on this model:
        ``min_channels``/``round_to`` larger than a layer, or a target that
        the prunable layers cannot reach.

        Raises:
            ValueError: naming the layers.
            UnreachableTargetError: saying how deep a cut is possible.
        """
        for option in ('min_channels', 'round_to'):
            value = getattr(self, option)
            small = [
                f'{g.name} ({self.original[g.name]})' for g in self.groups
                if self.original[g.name] < value
            ]
            if small:
                raise ValueError(
                    f'{option}={value} is larger than the channels of '
                    f'{len(small)} prunable layers: {", ".join(small[:5])}'
                    f'{" ..." if len(small) > 5 else ""}; lower it or skip '
                    'those layers')
        floor = {g.name: self._floor(g) for g in self.groups}
        floor.update(self._pinned(target_ratio))  # they keep their share
        options = f'min_channels={self.min_channels}, ' \
            f'round_to={self.round_to}' + (
                f', layer_ratios={self._layer_shares}'
                if self._layer_shares else '')
        if self.estimate is not None:
            estimate = self.estimate
            prunable = min(1. - estimate.fixed / estimate.original, 1.)
            deepest = 1. - estimate(floor) / estimate.original
            what = 'FLOPs' if self.target == 'flops' else 'latency'
        else:
            total = sum(self.original.values())
            prunable = 1.
            deepest = 1. - sum(floor.values()) / total
            what = 'channels'
        fewer = 'less' if self.target == 'latency' else 'fewer'
        if target_ratio > deepest + 1e-9:
            raise UnreachableTargetError(
                f'a target of {target_ratio:.1%} {fewer} {what} cannot be '
                f'reached: the prunable layers hold {prunable:.1%} of the '
                f'{what}, and with {options} the deepest cut possible '
                f'removes {deepest:.1%}. Lower target_ratio, or make more '
                'layers prunable (prunable=[...])')

    # --- planning -----------------------------------------------------

    def _floor(self, group: ChannelGroup) -> int:
        """The fewest channels ``group`` may keep."""
        return self._round(0, group)

    def _round(self, keep: float, group: ChannelGroup) -> int:
        keep = max(keep, self.min_channels,
                   self.graph.floors.get(group.name, 1))
        if self.round_to > 1:
            keep = math.ceil(keep / self.round_to) * self.round_to
        return min(int(round(keep)), self.original[group.name],
                   group.num_channels)

    def _uniform(self, ratio: float, live) -> Dict[str, int]:
        return {
            g.name: self._round(self.original[g.name] *
                                (1. - ratio), g) if g.name in live else
            self._pins.get(g.name, g.num_channels)
            for g in self.groups
        }

    def _pinned(self, ratio: float) -> Dict[str, int]:
        """Channels the groups of ``layer_ratios`` keep at a step at
        ``ratio``: their own share, reached along the schedule as the
        target is (``ratio / final_ratio`` of it)."""
        progress = min(ratio / self.final_ratio, 1.) if self.final_ratio \
            else 1.
        return {
            g.name: min(self._round(self.original[g.name] *
                                    (1. - share * progress), g),
                        g.num_channels)
            for g in self.groups
            for share in [self._layer_shares.get(g.name)]
            if share is not None
        }

    def plan(self,
             ratio: float,
             scores: Dict[str, torch.Tensor],
             live=None,
             count: Optional[int] = None,
             pins: Optional[Dict[str, int]] = None) -> Dict[str, int]:
        """Channels each group keeps after a step at ``ratio``, or after
        removing the ``count`` globally weakest channels (Molchanov et al.);
        groups not in ``live`` (default: all) keep what they have; those of
        ``layer_ratios`` what their share leaves at ``ratio`` (or
        ``pins``)."""
        self._pins = self._pinned(ratio) if pins is None else pins
        live = set(live if live is not None else scores) - set(self._pins)
        if count is not None:
            cut = self._knapsack if self.target == 'latency' else self._global
            return cut(ratio, scores, live, count)
        if self.target == 'channels' and not self.global_ranking:
            return self._uniform(ratio, live)
        if not self.global_ranking:
            return self._uniform_for_estimate(ratio, live)
        if self.target == 'latency':
            return self._knapsack(ratio, scores, live)
        return self._global(ratio, scores, live)

    def _uniform_for_estimate(self, ratio: float, live) -> Dict[str, int]:
        """Same channel ratio in every group, found by bisection so that the
        estimated FLOPs (or latency) meet the target."""
        goal = (1. - ratio) * self.estimate.original
        estimates = {}  # the last steps of the bisection repeat plans

        def cost(keep):
            key = tuple(keep.values())
            if key not in estimates:
                estimates[key] = self.estimate(keep)
            return estimates[key]

        lo, hi = 0., 1.
        for _ in range(40):
            mid = (lo + hi) / 2
            if cost(self._uniform(mid, live)) > goal:
                lo = mid
            else:
                hi = mid
        keep = self._uniform(hi, live)
        if self.round_to > 1:  # rounding overshoots: add steps back
            self._fill(keep, goal, live)
        return keep

    def _fill(self, keep: Dict[str, int], goal: float, live) -> None:
        """Give back ``round_to`` channels to groups, deepest cut first,
        while the FLOPs (or latency) stay within ``goal``."""
        changed = True
        while changed:
            changed = False
            for g in sorted(self.groups,
                            key=lambda g: keep[g.name] / g.num_channels):
                more = min(keep[g.name] + self.round_to, g.num_channels)
                if g.name not in live or more == keep[g.name]:
                    continue
                trial = dict(keep, **{g.name: more})
                if self.estimate(trial) <= goal:
                    keep[g.name] = more
                    changed = True

    def _global(self,
                ratio: float,
                scores: Dict[str, torch.Tensor],
                live,
                count: Optional[int] = None) -> Dict[str, int]:
        """Drop the globally weakest channels (scores normalised per group)
        until the channel or FLOPs target is met, or ``count`` of them."""
        keep = {g.name: self._pins.get(g.name, g.num_channels)
                for g in self.groups}
        floor = {g.name: self._floor(g) for g in self.groups}
        order = []
        for g in self.groups:
            if g.name not in live:
                continue
            s = scores[g.name].double()
            s = s / (s.norm() + 1e-12)
            order += [(v, g.name) for v in s.sort().values.tolist()]
        order.sort(key=lambda x: x[0])
        if self.target == 'flops':
            goal = (1. - ratio) * self.flops.original
            current = self.flops(keep)
        else:
            goal = round(sum(self.original.values()) * (1. - ratio))
            current = sum(keep.values())
        budget = float('inf') if count is None else count
        for _, name in order:
            if current <= goal or budget <= 0:
                break
            if keep[name] <= floor[name]:
                continue
            new = keep[name] - self._unit(keep, name, floor[name])
            while keep[name] > new:
                current -= self.flops.saving_per_channel(keep, name) \
                    if self.target == 'flops' else 1
                keep[name] -= 1
                budget -= 1
        return {
            g.name: self._round(keep[g.name], g) if g.name in live else
            keep[g.name]
            for g in self.groups
        }

    def _unit(self, keep: Dict[str, int], name: str, floor: int) -> int:
        """Channels the next cut of a group takes: one, or down to the
        next multiple of ``round_to`` (rounding the kept count back up
        afterwards would leave the target unmet)."""
        new = keep[name] - 1
        if self.round_to > 1:
            new = max(floor, new // self.round_to * self.round_to)
        return keep[name] - new

    def _knapsack(self,
                  ratio: float,
                  scores: Dict[str, torch.Tensor],
                  live,
                  count: Optional[int] = None) -> Dict[str, int]:
        """Greedy knapsack: cut the unit of least importance per second
        saved until the estimate meets the target, or ``count`` channels.

        Importance is the scores normalised per group by their L2 norm (as
        in :meth:`_global`), summed over the unit's weakest remaining
        channels. Savings change as neighbouring layers are cut, so a
        popped unit is re-priced and, if it got dearer than the next one,
        put back (lazy greedy).
        """
        estimate = self.estimate
        keep = {g.name: self._pins.get(g.name, g.num_channels)
                for g in self.groups}
        floor = {g.name: self._floor(g) for g in self.groups}
        ranked = {}
        for g in self.groups:
            if g.name in live:
                s = scores[g.name].double()
                ranked[g.name] = (s / (s.norm() + 1e-12)).sort().values
        cut = dict.fromkeys(ranked, 0)  # of ranked[name], those gone

        def price(name):
            """(importance per second saved, channels, seconds saved) of
            the group's next unit, ``None`` at its floor."""
            if keep[name] <= floor[name]:
                return None
            size = self._unit(keep, name, floor[name])
            trial, saved = dict(keep), 0.
            for _ in range(size):
                saved += estimate.saving_per_channel(trial, name)
                trial[name] -= 1
            value = float(ranked[name][cut[name]:cut[name] + size].sum())
            return (value / saved if saved > 0 else math.inf), size, saved

        heap, version = [], 0
        for name in ranked:
            offer = price(name)
            if offer is not None:
                heap.append((offer[0], name, version))
        heapq.heapify(heap)
        goal = (1. - ratio) * estimate.original
        current = estimate(keep)
        budget = math.inf if count is None else count
        while heap and current > goal and budget > 0:
            _, name, seen = heapq.heappop(heap)
            offer = price(name)
            if offer is None:
                continue
            if seen != version and heap and offer[0] > heap[0][0]:
                heapq.heappush(heap, (offer[0], name, version))
                continue
            _, size, saved = offer
            keep[name] -= size
            cut[name] += size
            current -= saved
            budget -= size
            version += 1
            offer = price(name)
            if offer is not None:
                heapq.heappush(heap, (offer[0], name, version))
        return {
            g.name: self._round(keep[g.name], g) if g.name in live else
            keep[g.name]
            for g in self.groups
        }

    # --- deciding (rank 0) and applying (every rank) ------------------

    def scores(self) -> Dict[str, torch.Tensor]:
        """Criterion scores, averaged over distributed ranks."""
        scores = {g.name: self.criterion(g).float() for g in self.groups}
        if dist.get_world_size() > 1:
            for s in scores.values():
                dist.all_reduce(s, op='mean')
        return scores

    def decide(self,
               ratio: float,
               last: bool,
               scores: Dict[str, torch.Tensor],
               count: Optional[int] = None) -> dict:
        """The step's plan: per group the selected channels (weakest first)
        and which of them are removed; or why the step is postponed."""
        crit = self.criterion
        if crit.needs_statistics and crit.num_updates == 0:
            return dict(postponed=(
                f'{type(crit).__name__} has no statistics since the last '
                f'step ({crit.num_skipped} optimizer steps skipped or '
                'non-finite)'))
        bad = [n for n, s in scores.items() if not torch.isfinite(s).all()]
        if bad:
            return dict(postponed=f'non-finite scores in {bad[:3]}')
        top = max((float(s.abs().max()) for s in scores.values()
                   if s.numel()), default=0.)
        dead = [
            n for n, s in scores.items() if crit.needs_statistics
            and float(s.abs().max()) <= 1e-12 * top
        ]
        live = [g.name for g in self.groups if g.name not in dead]
        keep = self.plan(ratio, scores, live, count)
        timed, correction, measured = [], None, None
        if last and count is None and self.target == 'latency' and \
                self.latency_timer is not None and self.latency_rounds > 0:
            keep, timed, measured = self._timed_plan(ratio, scores, live,
                                                     keep)
            correction = (self.latency.scale, self.latency.fixed)
        groups = {}
        for g in self.groups:
            drop = max(g.num_channels - keep[g.name], 0)
            ranked = torch.sort(scores[g.name], stable=True).indices
            selected = ranked[:drop]
            streak = self.streaks[g.name][selected] + 1
            hard = self._hard_mask(streak, last)
            groups[g.name] = (selected.tolist(), selected[hard].tolist())
        return dict(groups=groups, dead=dead, timed=timed,
                    correction=correction, measured=measured)

    def _timed_plan(self, ratio: float, scores: Dict[str, torch.Tensor],
                    live, keep: Dict[str, int]):
        """The plan, timed, and planned again further along the same greedy
        path until it lands within tolerance (see the module doc); the plan
        timed closest to the target, ``[estimated, measured]`` of each
        plan timed (shares of the original latency) and what the chosen
        plan measured. The table is left corrected at the chosen plan (as
        far as it can be: its fixed part stays >= 0)."""
        estimate = self.latency
        now = {g.name: g.num_channels for g in self.groups}
        here = estimate(now) / estimate.original  # earlier steps: estimated
        goal = 1. - ratio
        pins = self._pinned(ratio)  # the step's, whatever the aim
        points = [(here, here)]  # (estimated, measured): the model now
        tried = []  # (miss, plan, measured over the model now)
        for _ in range(self.latency_rounds):
            if keep == now:
                break  # nothing to time: the plan is the model
            try:
                relative = self.latency_timer(self.groups, keep)
            except Exception as error:  # a model whose copy does not run
                warnings.warn(f'the last step\'s plan could not be timed '
                              f'({error}); the latency table\'s plan is cut')
                break
            point = (estimate(keep) / estimate.original, relative * here)
            points.append(point)
            tried.append((abs(point[1] - goal), keep, relative))
            if tried[-1][0] <= self.latency_tolerance:
                break
            aim = min(max(_secant(points, goal), 0.), here)
            keep = self.plan(1. - aim, scores, live, pins=pins)
            if any(keep == plan for _, plan, _ in tried):
                break  # as near as the channels allow
        if not tried:
            return self.plan(ratio, scores, live, pins=pins), [], None
        _, keep, relative = min(tried, key=lambda t: t[0])
        estimate.correct(keep, relative, now)
        return keep, [list(p) for p in points[1:]], relative * here

    def _hard_mask(self, streak: torch.Tensor, last: bool) -> torch.Tensor:
        """Which of a selection (weakest first, with the number of steps in
        a row each was selected) are removed now."""
        if last and self.hard_at_end:
            return torch.ones(len(streak), dtype=torch.bool)
        hard = torch.zeros(len(streak), dtype=torch.bool)
        if self.soft_steps is not None:
            hard |= streak > self.soft_steps
        hard[:math.ceil(self.remove_ratio * len(streak))] = True
        return hard

    def step(self,
             ratio: float,
             last: bool = False,
             optimizers: Iterable[Optimizer] = (),
             mirrors=(),
             count: Optional[int] = None,
             timings: Optional[Dict[str, float]] = None) -> StepResult:
        """Score, decide on rank 0, broadcast, apply on every rank.
        ``count``: remove that many channels instead of reaching ``ratio``.
        ``timings``: seconds per phase of the step are added there
        (:data:`.phases.PHASES`).
        """
        with phase(timings, 'scoring'):
            scores = self.scores()
        with phase(timings, 'planning'):
            decision = [self.decide(ratio, last, scores, count)
                        if dist.get_rank() == 0 else None]
            if dist.get_world_size() > 1:
                dist.broadcast_object_list(decision, src=0)
        return self.apply(ratio, decision[0], list(optimizers), mirrors,
                          timings)

    def apply(self, ratio: float, decision: dict,
              optimizers: List[Optimizer], mirrors=(),
              timings: Optional[Dict[str, float]] = None) -> StepResult:
        if decision.get('postponed'):
            return StepResult(
                ratio, postponed=decision['postponed'],
                channels=self.channels())
        if decision.get('correction'):  # rank 0 timed the plan: every
            # rank's table says what it measured
            self.latency.scale, self.latency.fixed = decision['correction']
        with phase(timings, 'soft'):
            result, removals = self._soft(ratio, decision, optimizers)
        result.timed = decision.get('timed', [])
        result.measured_latency = decision.get('measured')
        try:
            for g, hard in removals:
                remove_channels(self.graph, g,
                                hard.nonzero().flatten().tolist(),
                                optimizers, mirrors, sync_attributes=False,
                                timings=timings)
                kept = ~hard
                for state in (self.streaks, self.soft, self.ever_soft):
                    state[g.name] = state[g.name][kept]
        finally:
            if removals:  # once, after every cut (even a failed one)
                with phase(timings, 'attributes'):
                    self.graph.sync_attributes(mirrors)
        if removals:
            with phase(timings, 'regroup'):
                self.refresh()
        self.criterion.reset()
        result.channels = self.channels()
        return result

    def _soft(self, ratio: float, decision: dict,
              optimizers: List[Optimizer]):
        """Soft-prune, release and count the selection of every group, and
        update its per-channel state; returns the step's result so far and
        the ``(group, channels to remove)`` of each group that loses
        some."""
        result = StepResult(ratio, dead=decision['dead'])
        removals = []
        for g in self.groups:
            selected_idx, hard_idx = (torch.as_tensor(
                i, dtype=torch.long) for i in decision['groups'][g.name])
            selected = torch.zeros(g.num_channels, dtype=torch.bool)
            selected[selected_idx] = True
            hard = torch.zeros_like(selected)
            hard[hard_idx] = True
            soft = selected & ~hard
            was_soft = self.soft[g.name]
            recovered = was_soft & ~selected
            result.recovered += int(recovered.sum())
            if self.soft_mode == 'mask' and recovered.any():
                release(g, recovered.nonzero().flatten(), self.generator)
            if soft.any():
                SOFT_PRUNE[self.soft_mode](g, soft.nonzero().flatten(),
                                           optimizers, self.generator)
                if self.soft_mode == 'zero':
                    result.regrowable += int(
                        can_regrow(g, soft.nonzero().flatten()).sum())
            self.streaks[g.name] = torch.where(selected,
                                               self.streaks[g.name] + 1, 0)
            self.soft[g.name] = soft
            self.ever_soft[g.name] |= soft
            result.soft += int(soft.sum())
            result.hard += int(hard.sum())
            if hard.any():
                removals.append((g, hard))
        return result, removals

    def hold(self, optimizers: Iterable[Optimizer] = ()) -> None:
        """``soft_mode='mask'``: zero the masked channels again (after every
        optimizer step)."""
        if self.soft_mode != 'mask':
            return
        for g in self.groups:
            masked = self.soft[g.name]
            if masked.any():
                hold_masked(g, masked.nonzero().flatten(), optimizers)

    def channels(self) -> Dict[str, List[int]]:
        return {
            g.name: [g.num_channels, self.original[g.name]]
            for g in self.groups
        }

    def kept_after_soft(self) -> int:
        """Live channels that were soft-pruned once and are kept now."""
        return sum(
            int((self.ever_soft[n] & ~self.soft[n]).sum())
            for n in self.ever_soft)

    # --- state ----------------------------------------------------------

    _PER_CHANNEL = ('streaks', 'soft', 'ever_soft')

    def state_dict(self) -> dict:
        state = {'original': dict(self.original),
                 'criterion': self.criterion.state_dict()}
        for key in self._PER_CHANNEL:
            state[key] = {k: v.clone() for k, v in getattr(self, key).items()}
        return state

    def load_state_dict(self, state: dict) -> None:
        self.original.update(state.get('original', {}))
        for key in self._PER_CHANNEL:
            mine = getattr(self, key)
            for name, value in state.get(key, {}).items():
                if name in mine and len(value) == len(mine[name]):
                    mine[name] = value.clone().to(mine[name].dtype)
        self.criterion.load_state_dict(state.get('criterion', {}))
