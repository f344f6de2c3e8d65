"""Prunable channel groups, found by tracing the model with Torch-Pruning.

A *channel group* is a set of channels that must be removed together: a conv's
output filters, the BN that normalises them, every layer that reads them (the
next conv, the RPN conv, fc6 through a flatten) and every other producer they
are added to (residual connections). Torch-Pruning's ``DependencyGraph`` finds
the coupling; this module turns each of its groups into plain
``(parameter, dim, channel index)`` slices, so that criteria, soft pruning and
optimizer surgery work on tensors without knowing about the graph.

What Torch-Pruning gets wrong by itself is fixed in :mod:`.coupling` (concat
and split sizes, channel shuffles, per-channel scale modules); groups that
would change what kept channels compute (grouped convs, group norms, ops of
unknown layout) are left unpruned with a log line; attributes that mirror
channel counts follow every prune (:mod:`.mirrors`); and building has a time
budget (:mod:`.deadline`).
"""
import logging
from dataclasses import dataclass, field
from types import FrameType
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.logging import print_log

from .coupling import (Coupling, DependencyGraph, OrbitLog, scale_dims,
                       scale_pruners, subgroup, why_not)
from .deadline import time_budget
from .mirrors import find_mirrors, sync_mirrors
from .tracing import TraceRecorder

PRUNABLE_ROOTS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
# seconds; ResNet-50 Faster R-CNN takes about 5 s on one CPU core
DEFAULT_TIMEOUT = 300.


def param_dims(module: nn.Module, producer: bool) -> List[Tuple[str, int]]:
    """Which of ``module``'s own parameters hold its out- or in-channels.

    Producers carry the channel on every parameter (conv/linear weight and
    bias, norm affine terms); consumers only on the weight's input axis.
    """
    scales = scale_dims(module)
    if scales is not None:  # a bare per-channel parameter: both sides
        return list(scales.items())
    transposed = getattr(module, 'transposed', False)
    dims = []
    for name, param in module.named_parameters(recurse=False):
        if producer:
            dims.append((name, 1 if transposed and name == 'weight' else 0))
        elif name == 'weight' and param.dim() >= 2:
            dims.append((name, 0 if transposed else 1))
    return dims


@dataclass
class ParamSlice:
    """One parameter of a group, with its channel axis ``dim``.

    ``positions``/``roots`` map elements of that axis to the group's channels
    when they differ (a flatten into a Linear expands one channel into H*W
    features); ``None`` means element i is channel i.
    """
    module: nn.Module
    name: str
    dim: int
    positions: Optional[torch.Tensor] = None
    roots: Optional[torch.Tensor] = None

    @property
    def param(self) -> nn.Parameter:
        return getattr(self.module, self.name)

    def per_channel(self, values: torch.Tensor,
                    num_channels: int) -> torch.Tensor:
        """Sum ``values`` (shaped like the parameter) per group channel."""
        other = [d for d in range(values.dim()) if d != self.dim]
        summed = values.sum(other) if other else values
        if self.roots is None:
            return summed
        return summed.new_zeros(num_channels).index_add_(
            0, self.roots, summed[self.positions])

    def channel_positions(self, channels: torch.Tensor) -> torch.Tensor:
        """Positions along ``dim`` that belong to ``channels``."""
        if self.roots is None:
            return channels
        return self.positions[torch.isin(self.roots, channels)]


@dataclass
class ChannelGroup:
    """Channels that are scored, zeroed and removed as one.

    A group's channels are its root layer's output channels, except where a
    coupling ties several of them together (a channel shuffle between
    halves that are split again): then each channel of the group is such an
    *orbit* of root channels, removed together.
    """
    name: str
    root: nn.Module
    num_channels: int
    producers: List[ParamSlice] = field(default_factory=list)
    consumers: List[ParamSlice] = field(default_factory=list)
    # conv/linear layers whose outputs carry the channels on dim 1
    outputs: List[nn.Module] = field(default_factory=list)
    # module name -> {'out' and/or 'in': share of that side's channels the
    # group holds}: how the group scales each layer's cost (a layer reading
    # a concat of several groups holds a part of each; a layer reading and
    # writing the same group, both sides)
    members: Dict[str, Dict[str, float]] = field(default_factory=dict)


def _index_tensors(idxs: Sequence[int], root_idxs: Sequence[int], size: int,
                   num_channels: int) -> Tuple[Optional[torch.Tensor], ...]:
    """``(positions, roots)``, or ``None``s where element i of the axis is
    channel i of the group and the two have the same length."""
    if size == num_channels == len(idxs) and list(idxs) == list(
            root_idxs) == list(range(size)):
        return None, None
    return (torch.as_tensor(list(idxs), dtype=torch.long),
            torch.as_tensor(list(root_idxs), dtype=torch.long))


class ChannelGraph:
    """The model's dependency graph and its prunable channel groups.

    Args:
        model: the (unwrapped) model.
        example_inputs: inputs for one traced forward pass.
        forward_fn: ``forward_fn(model, example_inputs)`` returning the
            outputs to trace back from.
        prunable: module-name prefixes whose output channels may be pruned
            (``''`` is the whole model).
        skip: names (or prefixes) of layers never pruned.
        timeout: seconds that tracing and grouping may take before a
            :class:`~.deadline.GraphBuildTimeout` names where they stuck
            (``None``: no limit).

    ``unprunable`` maps the root of each group left unpruned to the reason.
    """

    def __init__(self,
                 model: nn.Module,
                 example_inputs,
                 forward_fn: Callable,
                 prunable: Sequence[str] = ('', ),
                 skip: Sequence[str] = (),
                 timeout: Optional[float] = DEFAULT_TIMEOUT):
        self.model = model
        self.prunable = tuple(prunable)
        self.skip = tuple(skip)
        self.names = {m: n for n, m in model.named_modules()}
        self.unprunable: Dict[str, str] = {}
        # group -> the fewest channels the model runs with, where above 1
        self.floors: Dict[str, int] = {}
        # root -> (its width, orbits of its channels or None)
        self._orbits: Dict[nn.Module, Tuple[int, Optional[list]]] = {}
        # root -> (graph version, Torch-Pruning's group of all its channels,
        # what that group cuts): kept while no cut touches any of it
        self._full: Dict[nn.Module, tuple] = {}
        self._phase = 'tracing the forward pass'
        self._recorder = TraceRecorder(model)
        was_training = model.training
        try:
            with time_budget(timeout, self._where,
                             f'the channel graph of {type(model).__name__}'):
                with self._recorder:
                    self.dg = DependencyGraph(
                        self._recorder.cats).build_dependency(
                        model,
                        example_inputs,
                        forward_fn=forward_fn,
                        customized_pruners=scale_pruners(model),
                        verbose=False)
                self._phase = 'resolving concats, splits and shuffles'
                self.coupling = Coupling(self.dg, self._recorder.cats)
                self._phase = 'matching attributes to channel counts'
                self.mirrors = find_mirrors(model, self.dg,
                                            self._recorder.io)
                self.outputs = self._output_layers()
                self.roots = self._find_roots()
        finally:
            model.train(was_training)  # tracing switched it to eval
            self._recorder = None  # holds the traced autograd graph

    def _output_layers(self) -> List[nn.Module]:
        """Layers whose channels are channels of a model output: they reach
        it through no other layer, only through activations, norms, scales
        or reshapes (FCOS's box regression goes through ``Scale`` and
        ``exp``). They keep all their channels."""
        reaches: Dict[object, bool] = {}

        def passes(node) -> bool:  # channels go through unchanged
            m = node.module
            return not isinstance(m, PRUNABLE_ROOTS) or (
                isinstance(m, nn.modules.conv._ConvNd)
                and m.groups == m.in_channels == m.out_channels > 1)

        def reach(start) -> bool:
            stack, seen = [start], {start}
            while stack:
                node = stack.pop()
                if reaches.get(node) or not node.outputs:
                    return True
                for nxt in node.outputs:
                    if nxt not in seen and passes(nxt):
                        seen.add(nxt)
                        stack.append(nxt)
            return False

        outputs = []
        for m, node in self.dg.module2node.items():
            if isinstance(m, PRUNABLE_ROOTS):
                reaches[node] = reach(node)
                if reaches[node]:
                    outputs.append(m)
        return outputs

    def _where(self, frame: Optional[FrameType]) -> str:
        """What building is doing now, for a time-out message."""
        module = self._recorder.where if self._recorder else None
        if module is not None and self._phase.startswith('tracing'):
            return f'tracing the forward pass, in {module}'
        while frame is not None:  # Torch-Pruning's node being expanded
            dep = frame.f_locals.get('dep')
            if 'torch_pruning' in frame.f_code.co_filename and \
                    hasattr(dep, 'target'):
                return f'{self._phase}, at {dep.target.name}'
            frame = frame.f_back
        return self._phase

    def invalidate(self, cut=None) -> None:
        """The model lost channels (:func:`~.surgery.remove_channels` says
        so after every cut, with the Torch-Pruning group it cut; ``None``:
        anything may have changed). What the graph keeps from one search to
        the next is derived again: index mappings and channel counts of
        nodes after any cut, the full group of a root after a cut that
        touched one of its layers (on the same side) or ops."""
        self.dg.invalidate(cut)

    def sync_attributes(self, copies: Iterable[nn.Module] = ()) -> List[str]:
        """After a prune: set the attributes that mirror channel counts
        (``out_channels`` of RoI extractors, heads' ``in_channels``, ...)
        from the weights, in the model and in ``copies`` (EMA models)."""
        return sync_mirrors(self.mirrors, copies)

    def _in_scope(self, name: str) -> bool:
        def match(prefix):
            return (prefix == '' or name == prefix
                    or name.startswith(prefix + '.'))

        return (any(match(p) for p in self.prunable)
                and not any(match(s) for s in self.skip))

    def _find_roots(self) -> List[nn.Module]:
        """One root layer per group whose producers are all in scope and
        whose channels can go without changing what the others compute.

        The same walk as Torch-Pruning's ``get_all_groups`` (so the same
        roots), one group at a time so that a time-out can name it. The
        graph also holds Torch-Pruning's own nodes for additions, concats
        and reshapes; only the model's real layers are checked for scope.
        """
        ignored = set(
            m for m in self.dg.module2node
            if m in self.names and not self._in_scope(self.names[m]))
        ignored.update(self.outputs)
        visited, roots = set(), []
        for m in list(self.dg.module2node):
            if not isinstance(m, PRUNABLE_ROOTS) or m in ignored \
                    or m in visited:
                continue
            self._phase = f'grouping the channels of {self.names[m]}'
            group = self._full_group(m)
            producers = [
                item.dep.target.module for item in group
                if self.dg.is_out_channel_pruning_fn(item.dep.handler)
            ]
            visited.update(p for p in producers if isinstance(p, nn.Module))
            if any(p in ignored for p in producers
                   if isinstance(p, nn.Module)):
                continue
            reason = self._why_not(group)
            orbits = self._orbits[m][1]
            if reason is None and orbits is not None and len(orbits) == 1:
                reason = (f'its {self.out_channels(m)} channels are tied '
                          'together (by a channel shuffle, parts split at run '
                          'time or an op that mixes channels): they can only '
                          'go all at once')
            if reason is not None:
                self.note_kept(self.names[m], reason)
                continue
            roots.append(m)
        order = {m: i for i, m in enumerate(self.names)}
        return sorted(roots, key=order.__getitem__)

    def note_kept(self, name: str, reason: str) -> None:
        """Keep the channels of group ``name`` whole, saying why."""
        self.unprunable[name] = reason
        print_log(f'Pruning: the channels of {name} are kept: {reason}',
                  logger='current', level=logging.INFO)

    def _why_not(self, tp_group) -> Optional[str]:
        for item in tp_group:
            node = item.dep.target
            if node in self.coupling.opaque:
                return f'they pass through {self.coupling.opaque[node]}'
            reason = why_not(node.module, self.names,
                             self.dg._param_to_name)
            if reason is not None:
                return reason
        return None

    def out_channels(self, module: nn.Module) -> int:
        return self.dg.get_out_channels(module)

    def _expand(self, root: nn.Module, idxs: Iterable[int]):
        pruner = self.dg.get_pruner_of_module(root)
        return self.dg.get_pruning_group(root, pruner.prune_out_channels,
                                         list(idxs))

    def _full_group(self, root: nn.Module):
        """Torch-Pruning's group of all of ``root``'s channels; notes which
        of them are tied into orbits."""
        width = self.out_channels(root)
        version = self.dg.version
        with OrbitLog() as log:
            group = self._expand(root, range(width))
        self._orbits[root] = (width, log.orbits(width))
        self._full[root] = (version, group,
                            frozenset(self.dg.cut_key(i) for i in group))
        return group

    def _current_full(self, root: nn.Module):
        """``root``'s full group if no cut since its search touched it
        (then a search now would find the same), else ``None``."""
        cached = self._full.get(root)
        if cached is None or not self.dg.unchanged_since(cached[0],
                                                         cached[2]):
            return None
        return cached[1]

    def orbits(self, root: nn.Module) -> Optional[List[List[int]]]:
        """The root channels each group channel stands for (``None``: one
        each)."""
        cached = self._orbits.get(root)
        if cached is None or cached[0] != self.out_channels(root):
            self._full_group(root)
        return self._orbits[root][1]

    def tp_group(self, root: nn.Module, channels: Iterable[int]):
        """Torch-Pruning's group for removing ``channels`` of ``root``'s
        group (orbits stand for all their root channels)."""
        orbits = self.orbits(root)
        channels = list(channels)
        if orbits is not None:
            channels = sorted(i for c in channels for i in orbits[int(c)])
        full = self._current_full(root)
        group = subgroup(full, channels) if full is not None else None
        return group if group is not None else self._expand(root, channels)

    def groups(self, names: Optional[Iterable[str]] = None
               ) -> List[ChannelGroup]:
        """The current groups (recompute after every hard prune); only
        those of ``names`` if given."""
        roots = self.roots if names is None else [
            r for r in self.roots if self.names[r] in set(names)]
        return [self._group(root) for root in roots]

    def _group(self, root: nn.Module) -> ChannelGroup:
        tp_group = self._current_full(root)
        if tp_group is None:
            tp_group = self._full_group(root)
        orbits = self._orbits[root][1]
        num = self.out_channels(root) if orbits is None else len(orbits)
        orbit_of = None if orbits is None else {
            r: k
            for k, orbit in enumerate(orbits) for r in orbit
        }
        group = ChannelGroup(self.names[root], root, num)
        for item in tp_group:
            module = item.dep.target.module
            if isinstance(module, nn.Parameter) or module not in self.names:
                continue  # Torch-Pruning's node for an add, concat, ...
            producer = self.dg.is_out_channel_pruning_fn(item.dep.handler)
            name = self.names[module]
            width = self.dg.get_out_channels(module) if producer else \
                self.dg.get_in_channels(module)
            group.members.setdefault(name, {})['out' if producer else 'in'] \
                = len(set(item.idxs)) / width if width else 1.
            if producer and isinstance(module, PRUNABLE_ROOTS):
                group.outputs.append(module)
            root_idxs = item.root_idxs if orbit_of is None else [
                orbit_of[r] for r in item.root_idxs]
            for pname, dim in param_dims(module, producer):
                size = getattr(module, pname).shape[dim]
                pos, roots = _index_tensors(item.idxs, root_idxs, size, num)
                (group.producers if producer else group.consumers).append(
                    ParamSlice(module, pname, dim, pos, roots))
        return group
