"""Prunable channel groups, found by tracing the model with Torch-Pruning.

A *channel group* is a set of channels that must be removed together: a conv's
output filters, the BN that normalises them, every layer that reads them (the
next conv, the RPN conv, fc6 through a flatten) and every other producer they
are added to (residual connections). Torch-Pruning's ``DependencyGraph`` finds
the coupling; this module turns each of its groups into plain
``(parameter, dim, channel index)`` slices, so that criteria, soft pruning and
optimizer surgery work on tensors without knowing about the graph.
"""
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch_pruning as tp

PRUNABLE_ROOTS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def param_dims(module: nn.Module, producer: bool) -> List[Tuple[str, int]]:
    """Which of ``module``'s own parameters hold its out- or in-channels.

    Producers carry the channel on every parameter (conv/linear weight and
    bias, norm affine terms); consumers only on the weight's input axis.
    """
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
    """Channels that are scored, zeroed and removed as one."""
    name: str
    root: nn.Module
    num_channels: int
    producers: List[ParamSlice] = field(default_factory=list)
    consumers: List[ParamSlice] = field(default_factory=list)
    # conv/linear layers whose outputs carry the channels on dim 1
    outputs: List[nn.Module] = field(default_factory=list)
    # module name -> 'out' or 'in': how the group scales each layer's cost
    members: Dict[str, str] = field(default_factory=dict)


def _index_tensors(idxs: Sequence[int], root_idxs: Sequence[int],
                   size: int) -> Tuple[Optional[torch.Tensor], ...]:
    if len(idxs) == size and list(idxs) == list(root_idxs) == list(
            range(size)):
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
    """

    def __init__(self,
                 model: nn.Module,
                 example_inputs,
                 forward_fn: Callable,
                 prunable: Sequence[str] = ('', ),
                 skip: Sequence[str] = ()):
        self.model = model
        self.prunable = tuple(prunable)
        self.skip = tuple(skip)
        was_training = model.training
        self.dg = tp.DependencyGraph().build_dependency(
            model, example_inputs, forward_fn=forward_fn, verbose=False)
        model.train(was_training)  # tracing switched it to eval
        self.names = {m: n for n, m in model.named_modules()}
        # layers whose outputs are model outputs keep all their channels
        self.outputs = [
            m for m, node in self.dg.module2node.items()
            if isinstance(m, PRUNABLE_ROOTS) and not node.outputs
        ]
        self.roots = self._find_roots()

    def _in_scope(self, name: str) -> bool:
        def match(prefix):
            return (prefix == '' or name == prefix
                    or name.startswith(prefix + '.'))

        return (any(match(p) for p in self.prunable)
                and not any(match(s) for s in self.skip))

    def _find_roots(self) -> List[nn.Module]:
        """One root layer per group whose producers are all in scope.

        The graph also holds Torch-Pruning's own nodes for additions, concats
        and reshapes; only the model's real layers are checked for scope.
        """
        ignored = [
            m for m in self.dg.module2node
            if m in self.names and not self._in_scope(self.names[m])
        ] + self.outputs
        roots = [
            group[0].dep.target.module for group in self.dg.get_all_groups(
                ignored_layers=ignored, root_module_types=PRUNABLE_ROOTS)
        ]
        order = {m: i for i, m in enumerate(self.names)}
        return sorted(roots, key=order.__getitem__)

    def out_channels(self, module: nn.Module) -> int:
        return self.dg.get_out_channels(module)

    def tp_group(self, root: nn.Module, channels: Iterable[int]):
        """Torch-Pruning's group for removing ``channels`` of ``root``."""
        pruner = self.dg.get_pruner_of_module(root)
        return self.dg.get_pruning_group(root, pruner.prune_out_channels,
                                         list(channels))

    def groups(self) -> List[ChannelGroup]:
        """The current groups (recompute after every hard prune)."""
        return [self._group(root) for root in self.roots]

    def _group(self, root: nn.Module) -> ChannelGroup:
        num = self.out_channels(root)
        group = ChannelGroup(self.names[root], root, num)
        for item in self.tp_group(root, range(num)):
            module = item.dep.target.module
            if isinstance(module, nn.Parameter):
                raise NotImplementedError(
                    'prunedet does not prune bare nn.Parameter nodes '
                    f'(coupled to {group.name})')
            if module not in self.names:
                continue  # Torch-Pruning's node for an add, concat, ...
            producer = self.dg.is_out_channel_pruning_fn(item.dep.handler)
            name = self.names[module]
            group.members[name] = 'out' if producer else 'in'
            if producer and isinstance(module, PRUNABLE_ROOTS):
                group.outputs.append(module)
            for pname, dim in param_dims(module, producer):
                size = getattr(module, pname).shape[dim]
                pos, roots = _index_tensors(item.idxs, item.root_idxs, size)
                (group.producers if producer else group.consumers).append(
                    ParamSlice(module, pname, dim, pos, roots))
        return group
