"""Physical channel removal that keeps training going.

Torch-Pruning cuts every coupled layer of a group but replaces each parameter
by a new ``nn.Parameter``. The optimizer still holds the old ones and their
state (SGD momentum, Adam moments), so here every state tensor is cut with the
same indices as its parameter and re-keyed to the new parameter, in every
param group: training continues without rebuilding the optimizer, and the
param schedulers, which only see the param groups, keep their state.
"""
from typing import Dict, Iterable, List, Optional, Tuple

import torch
import torch.nn as nn
from torch.optim import Optimizer

from .layers import settle_group_norm
from .groups import ChannelGraph, ChannelGroup, param_dims
from .phases import phase

# old parameter -> [(dim, indices kept along dim)]; a layer whose inputs and
# outputs are in the same group (an FPN's extra conv reading a level that a
# shared head also reads) is cut along two dims
SlicePlan = Dict[nn.Parameter, List[Tuple[int, torch.Tensor]]]


def remove_channels(graph: ChannelGraph,
                    group: ChannelGroup,
                    channels: Iterable[int],
                    optimizers: Iterable[Optimizer] = (),
                    mirrors: Iterable[nn.Module] = (),
                    sync_attributes: bool = True,
                    timings: Optional[Dict[str, float]] = None) -> None:
    """Physically remove ``channels`` of ``group`` from every coupled layer,
    and cut the optimizers' state to match.

    ``mirrors`` are copies of the model with the same module names (an EMA
    model): the same layers lose the same channels there.
    ``sync_attributes=False`` leaves the attributes that mirror channel
    counts to the caller (``graph.sync_attributes(mirrors)`` once after
    several cuts: nothing that cuts reads them). ``timings``: seconds per
    phase are added there (:mod:`.phases`).
    """
    with phase(timings, 'graph'):
        tp_group, plan, owners, replay = _slice_plan(graph, group, channels)
    with phase(timings, 'surgery'):
        tp_group.prune(record_history=False)
        for module, _, _ in owners:
            settle_group_norm(module)
        graph.invalidate(tp_group)  # what it cut is derived again
        new_params = {}
        for module, pname, old in owners:
            new = getattr(module, pname)
            new.requires_grad_(old.requires_grad)
            new_params[old] = new
    with phase(timings, 'optimizer'):
        for optimizer in optimizers:
            rebind_optimizer(optimizer, new_params, plan)
    with phase(timings, 'surgery'):  # the same cut in the copies
        for mirror in mirrors:
            modules = dict(mirror.named_modules())
            for name, dep, idxs in replay:
                dep.handler.__self__.pruning_dim = dep.target.pruning_dim
                dep.handler(modules[name], idxs)
                settle_group_norm(modules[name])
    if sync_attributes:
        with phase(timings, 'attributes'):
            # out_channels, in_channels, ... follow
            graph.sync_attributes(mirrors)


def _slice_plan(graph: ChannelGraph, group: ChannelGroup,
                channels: Iterable[int]):
    """Torch-Pruning's group for removing ``channels``, and per parameter
    the indices each cut keeps."""
    tp_group = graph.tp_group(group.root, sorted(int(c) for c in channels))
    plan: SlicePlan = {}
    owners: List[Tuple[nn.Module, str, nn.Parameter]] = []
    replay = []
    for item in tp_group:
        module = item.dep.target.module
        if module not in graph.names:
            continue
        producer = graph.dg.is_out_channel_pruning_fn(item.dep.handler)
        idxs = [int(i) for i in item.idxs]
        replay.append((graph.names[module], item.dep, idxs))
        removed = torch.as_tensor(idxs, dtype=torch.long)
        kept = {}  # axis length -> indices kept (a layer's params share it)
        for pname, dim in param_dims(module, producer):
            param = getattr(module, pname)
            if param not in plan:
                plan[param] = []
                owners.append((module, pname, param))
            if any(d == dim for d, _ in plan[param]):
                raise NotImplementedError(
                    f'{graph.names[module]}.{pname} is cut twice along dim '
                    f'{dim} by the group of {group.name}')
            size = param.shape[dim]
            if size not in kept:
                keep = torch.ones(size, dtype=torch.bool)
                keep[removed] = False
                kept[size] = keep.nonzero().flatten()
            plan[param].append((dim, kept[size]))
    return tp_group, plan, owners, replay


def rebind_optimizer(optimizer: Optimizer,
                     new_params: Dict[nn.Parameter, nn.Parameter],
                     plan: SlicePlan = None) -> None:
    """Point ``optimizer`` at ``new_params`` (old -> new) and cut the state.

    State tensors shaped like the old parameter are sliced with the plan's
    indices; anything else (Adam's ``step``) is kept as it is.
    """
    plan = plan or {}
    # by id, as tensors hash (in Python, for every parameter of the model)
    by_id = {id(old): new for old, new in new_params.items()}
    for param_group in optimizer.param_groups:
        params = param_group['params']
        for i, p in enumerate(params):
            new = by_id.get(id(p))
            if new is None:
                continue
            params[i] = new
            state = optimizer.state.pop(p, None)
            if state is None:
                continue
            optimizer.state[new] = {
                k: _cut(v, plan[p]) if torch.is_tensor(v)
                and v.shape == p.shape else v
                for k, v in state.items()
            }


def forget_parameters(optimizer: torch.optim.Optimizer, params) -> None:
    """Take parameters of removed modules (a residual block replaced by
    its shortcut, a deleted branch) out of ``optimizer`` with their state,
    so that it only steps, decays and saves what the model holds."""
    gone = {id(p) for p in params}
    if not gone:
        return
    for group in optimizer.param_groups:
        group['params'] = [p for p in group['params'] if id(p) not in gone]
    for p in [p for p in optimizer.state if id(p) in gone]:
        del optimizer.state[p]


def _cut(value: torch.Tensor, cuts) -> torch.Tensor:
    for dim, keep in cuts:
        value = value.index_select(dim, keep.to(value.device))
    return value.contiguous()
