"""Removing what GAL's masks switched off, exactly.

At the end of GAL every structure whose mask is exactly 0 goes and the
other scales are folded into the weights, so that the plain pruned
classifier computes what the masked student computed:

* filters: a mask ``m`` after a layer (and its norm and activation) is
  folded into the layers that read those channels, whose input weights are
  scaled by ``m`` per channel (exact through pooling, flatten and concat,
  and through max-pooling since ``m >= 0``). The channels with ``m = 0``
  are then read with zero weights and go with the channel graph and
  surgery every prunedet method uses. A layer keeps at least one channel.
* blocks: a mask multiplies the residual branch's last norm layer, so its
  affine terms (or a conv's weight and bias) are scaled by it; a block at 0
  becomes its shortcut, keeping a downsampling block's projection.
* branches: folded like filters into the readers of the branch's channels;
  a branch at 0 loses all of them from its readers and leaves its
  container. Each container keeps one branch.

The result is checked: the pruned model's outputs on the given inputs must
equal the masked student's.
"""
import copy
import logging
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Tuple

import torch
import torch.nn as nn
from mmengine.logging import print_log

from prunedet.pruning.groups import ChannelGraph, ChannelGroup
from prunedet.pruning.structures import (CONTAINERS, remove_branch,
                                         replace_block)
from prunedet.pruning.surgery import forget_parameters, remove_channels
from prunedet.pruning.tracing import trace_forward
from .masks import StructureMask, channels_of, producer_of

TOLERANCE = 1e-4  # of the largest logit (at least 1)


@dataclass
class RemovalSummary:
    """What went. ``filters``: layer -> (kept, total) channels."""
    filters: Dict[str, Tuple[int, int]] = field(default_factory=dict)
    blocks: List[str] = field(default_factory=list)
    num_blocks: int = 0
    branches: List[str] = field(default_factory=list)
    num_branches: int = 0
    max_difference: float = 0.

    def lines(self) -> List[str]:
        lines = []
        if self.filters:
            kept = '-'.join(str(k) for k, _ in self.filters.values())
            total = '-'.join(str(t) for _, t in self.filters.values())
            lines.append(f'filters kept {kept} of {total}')
        if self.num_blocks:
            lines.append(f'blocks removed {len(self.blocks)} of '
                         f'{self.num_blocks}: {self.blocks}')
        if self.num_branches:
            lines.append(f'branches removed {len(self.branches)} of '
                         f'{self.num_branches}: {self.branches}')
        lines.append('pruned outputs equal the masked ones (max difference '
                     f'{self.max_difference:.2e})')
        return lines

    def as_dict(self) -> dict:
        """Plain data, for checkpoints."""
        return dict(
            filters={k: list(v) for k, v in self.filters.items()},
            blocks=list(self.blocks),
            num_blocks=self.num_blocks,
            branches=list(self.branches),
            num_branches=self.num_branches)


def _under(name: str, roots: Iterable[str]) -> bool:
    return any(name == r or name.startswith(r + '.') for r in roots)


def _kept_branches(masks: List[StructureMask], model: nn.Module
                   ) -> List[StructureMask]:
    """Branch masks at zero, but never every branch of a container."""
    modules = dict(model.named_modules())
    off, by_parent = [], {}
    for mask in masks:
        by_parent.setdefault(mask.target.rpartition('.')[0], []).append(mask)
    for parent, members in by_parent.items():
        zero = [m for m in members if m.weight.item() == 0]
        container = modules[parent]
        if isinstance(container, CONTAINERS) and len(zero) == len(
                container) and zero:
            print_log(f'GAL: every branch of {parent} is off; '
                      f'{zero[0].target} stays (it outputs zeros)',
                      logger='current', level=logging.WARNING)
            zero = zero[1:]
        off += zero
    return off


class _Groups:
    """The channel group of a producing layer, fresh after every cut."""

    def __init__(self, model: nn.Module, inputs: torch.Tensor):
        self.model = model
        self.graph = ChannelGraph(model, inputs, trace_forward(model))

    def of(self, name: str, groups=None) -> ChannelGroup:
        layer = producer_of(self.model, name)
        graph = self.graph
        for group in groups if groups is not None else graph.groups():
            if layer in group.outputs:
                if len(group.outputs) > 1:
                    others = sorted(graph.names[m] for m in group.outputs
                                    if m is not layer)
                    raise ValueError(
                        f'GAL: the channels of {name} are tied to '
                        f'{others[:3]} (added together); a mask on one of '
                        'them cannot remove them: mask the whole block')
                return group
        layer_name = graph.names.get(layer, name)
        reason = graph.unprunable.get(
            layer_name, 'they are model outputs or outside the graph')
        raise ValueError(f'GAL: the channels of {name} cannot be removed: '
                         f'{reason}')


def _scale_readers(group: ChannelGroup, scale: torch.Tensor) -> None:
    """Multiply every reader's input weights by ``scale`` (per channel)."""
    for s in group.consumers:
        param = s.param
        if s.roots is None:
            factor = scale
        else:
            factor = torch.ones(param.shape[s.dim], dtype=scale.dtype)
            factor[s.positions] = scale[s.roots]
        shape = [1] * param.dim()
        shape[s.dim] = -1
        param.data.mul_(factor.to(param).view(shape))


def remove_masked_structures(model: nn.Module,
                             inputs: torch.Tensor,
                             optimizers: Iterable = (),
                             tolerance: float = TOLERANCE) -> RemovalSummary:
    """Fold ``model``'s masks into its weights, remove what is off, release
    the masks (a :class:`~prunedet.gal.GAL` becomes a plain classifier).

    ``optimizers`` of the student are cut with the weights. Raises
    ``RuntimeError`` if the pruned outputs on ``inputs`` differ from the
    masked ones (a mask placed where it cannot be folded).
    """
    model.eval()
    with torch.no_grad():
        reference = model.student_logits(inputs)
    masks = model.release_masks()
    optimizers = list(optimizers)
    summary = RemovalSummary(
        num_blocks=len(masks.of_kind('block')),
        num_branches=len(masks.of_kind('branch')))
    gone = _remove_blocks(model, masks.of_kind('block'), summary)
    branches = [
        m for m in masks.of_kind('branch') if not _under(m.target, gone)
    ]
    off = _kept_branches(branches, model)
    gone += [m.target for m in off]
    filters = [
        m for m in masks.of_kind('filter') if not _under(m.target, gone)
    ]
    if filters or branches:
        groups = _Groups(model, inputs)
        snapshot = groups.graph.groups()  # channel positions before cuts
        for mask in filters + branches:
            _fold_into_readers(groups.of(mask.target, snapshot), mask)
        for mask in filters:
            _remove_filters(groups, mask, optimizers, summary)
        for mask in off:
            _remove_branch(groups, mask, optimizers)
            summary.branches.append(mask.target)
    live = {id(p) for p in model.parameters()}
    for optimizer in optimizers:
        forget_parameters(optimizer, [
            p for g in optimizer.param_groups for p in g['params']
            if id(p) not in live
        ])
    with torch.no_grad():
        out = model(inputs, mode='tensor')
    summary.max_difference = float((out - reference).abs().max())
    bound = tolerance * max(1., float(reference.abs().max()))
    if not summary.max_difference <= bound:
        raise RuntimeError(
            'GAL: the pruned model does not compute what the masked student '
            f'did (max difference {summary.max_difference:.3g} > '
            f'{bound:.3g}); a mask sits where it cannot be folded (a filter '
            'mask must follow its layer, norm and activation, before any '
            'other layer)')
    return summary


def _remove_blocks(model: nn.Module, masks: List[StructureMask],
                   summary: RemovalSummary) -> List[str]:
    """Blocks at 0 become their shortcut; the others' residual branch is
    scaled in its last layer. Returns the removed blocks."""
    for mask in masks:
        scale = mask.weight.item()
        if scale == 0:
            replace_block(model, mask.target, mask.details['shortcut'],
                          mask.details['activation'])
            summary.blocks.append(mask.target)
            continue
        residual = dict(model.named_modules())[mask.details['residual']]
        for param in residual.parameters(recurse=False):
            param.data.mul_(scale)  # out * m = (m W) x + m b
    return list(summary.blocks)


def _fold_into_readers(group: ChannelGroup, mask: StructureMask) -> None:
    scale = mask.weight.detach()
    if mask.kind == 'branch':
        scale = scale.expand(group.num_channels)
    elif group.num_channels != scale.numel():
        raise ValueError(f'GAL: {mask.target} has {scale.numel()} mask '
                         f'entries for {group.num_channels} channels')
    _scale_readers(group, scale)


def _remove_filters(groups: _Groups, mask: StructureMask, optimizers,
                    summary: RemovalSummary) -> None:
    weight = mask.weight.detach()
    layer = producer_of(groups.model, mask.target)
    name = groups.graph.names[layer]
    total = channels_of(layer)
    off = (weight == 0).nonzero().flatten().tolist()
    if len(off) == total:
        print_log(f'GAL: every filter of {name} is off; channel {off[0]} '
                  'stays (it outputs zeros)', logger='current',
                  level=logging.WARNING)
        off = off[1:]
    if off:
        remove_channels(groups.graph, groups.of(mask.target), off,
                        optimizers)
    summary.filters[name] = (total - len(off), total)


def _remove_branch(groups: _Groups, mask: StructureMask,
                   optimizers) -> None:
    group = groups.of(mask.target)
    remove_channels(groups.graph, group, range(group.num_channels),
                    optimizers)
    branch = dict(groups.model.named_modules())[mask.target]
    # the branch's own layers now have no channels: forget their attributes
    own = set(branch.modules())
    graph = groups.graph
    graph.mirrors = [m for m in graph.mirrors if m.module not in own]
    remove_branch(groups.model, mask.target)


def check_removal(model: nn.Module, inputs: torch.Tensor) -> RemovalSummary:
    """Remove structures from a copy of ``model`` whose masks are set to a
    pattern of zeros (every third filter, every other block and branch), to
    learn before training that the final removal will work and be exact.
    """
    trial = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for kind in trial.masks.kinds():
            for i, mask in enumerate(trial.masks.of_kind(kind)):
                values = torch.rand(mask.weight.shape, generator=generator)
                values += 0.5
                if kind == 'filter':
                    values[1::3] = 0
                elif i % 2:
                    values.zero_()
                mask.weight.copy_(values)
    return remove_masked_structures(trial, inputs)
