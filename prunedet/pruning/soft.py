"""Soft pruning: what a selected channel becomes before it is removed.

The hook's ``soft_mode`` picks one of three forms:

* ``'zero'`` (SFP/PSFP, He et al. 2018): the channel's **filter weights** in
  the producing conv/linear layers are set to zero, nothing else. The conv
  bias, the norm layer's gamma/beta and statistics and the weights of the
  layers reading the channel stay, so the filter still gets a gradient
  (batch norm renormalises its input, the consumers pass dL/dy back) and can
  regrow; if it does, the criterion stops selecting it and it recovers.
  One limit is inherent to SFP with batch norm: a zeroed filter feeds BN a
  constant, BN then outputs its shift beta, and after a ReLU the gradient
  only flows if beta > 0 (or a residual path keeps the channel active);
  BN then amplifies that gradient by gamma / sqrt(eps), so the filter
  regrows at once. With beta <= 0 it waits at zero until it is removed.
* ``'reinit'`` (the public PGP code): fresh He-normal filter weights instead
  of zeros; the rest as in ``'zero'``.
* ``'mask'``: the channel's output is held at exactly zero (filter weights,
  biases and norm affine terms zeroed, and zeroed again after every optimizer
  step, :func:`hold_masked`) until it is removed, or released when a later
  step no longer selects it (:func:`release`). Training then sees the network
  as it will be after removal. A masked channel gets no gradient, so every
  data-driven criterion scores it 0 and selects it again: in practice it is
  removed at the step ``soft_steps`` allows. Release happens with criteria
  that can score a masked channel (e.g. from the layers that read it).

Optimizer state: the filter's *first* moments (SGD momentum, Adam's
``exp_avg``) are reset, so the old update direction does not push the filter
back. The *second* moments (Adam's ``exp_avg_sq``) are kept: they are the
scale of the filter's past gradients, so its first Adam update is
``(1 - beta1) * lr * g / sqrt(v)`` rather than the full ``lr * sign(g)``
that zeroing both moments gives at a large ``step``. That damping holds
while the zeroed filter's gradient is of the size of its past ones; behind
batch norm it is not (BN divides its now constant input by ``sqrt(eps)``,
so the gradient is far larger), and the first update is then about
``lr``-sized: the filter restarts at a normal step size instead of a
momentum-driven one.
"""
from typing import Iterable, List, Optional

import torch
import torch.nn as nn
from torch.optim import Optimizer

from .groups import PRUNABLE_ROOTS, ChannelGroup, ParamSlice

SOFT_MODES = ('zero', 'reinit', 'mask')
_NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm)
FIRST_MOMENTS = ('momentum_buffer', 'exp_avg')


def _filters(group: ChannelGroup) -> List[ParamSlice]:
    """The filter weights of the conv/linear layers producing the group."""
    return [
        s for s in group.producers
        if isinstance(s.module, PRUNABLE_ROOTS) and s.name == 'weight'
    ]


def _fill(slices: Iterable[ParamSlice], channels: torch.Tensor,
          value: float) -> None:
    with torch.no_grad():
        for s in slices:
            pos = s.channel_positions(channels).to(s.param.device)
            s.param.index_fill_(s.dim, pos, value)


def _reset_state(optimizers: Iterable[Optimizer], slices, channels,
                 keys=None) -> None:
    """Zero optimizer state of ``channels`` (only ``keys``; all if None)."""
    for optimizer in optimizers:
        for s in slices:
            state = optimizer.state.get(s.param)
            if not state:
                continue
            pos = s.channel_positions(channels).to(s.param.device)
            for k, v in state.items():
                if (keys is None or k in keys) and torch.is_tensor(v) \
                        and v.shape == s.param.shape:
                    v.index_fill_(s.dim, pos, 0.)


def zero_filters(group: ChannelGroup,
                 channels: torch.Tensor,
                 optimizers: Iterable[Optimizer] = (),
                 generator: Optional[torch.Generator] = None) -> None:
    """SFP's soft pruning: zero the channels' filter weights only."""
    filters = _filters(group)
    _fill(filters, channels, 0.)
    _reset_state(optimizers, filters, channels, FIRST_MOMENTS)


def can_regrow(group: ChannelGroup, channels: torch.Tensor) -> torch.Tensor:
    """Which zeroed ``channels`` can get a gradient to regrow by
    (``'zero'`` mode): those of a group without norm layers, and those whose
    norm shift beta is positive in one of the group's norm layers. Behind a
    norm and a ReLU a zeroed filter outputs ``relu(beta)``, so with
    ``beta <= 0`` no gradient reaches it; the count of recovered channels
    only means something beside this one."""
    shifts = [
        s for s in group.producers
        if isinstance(s.module, _NORMS) and s.name == 'bias'
    ]
    if not shifts:
        return torch.ones(len(channels), dtype=torch.bool)
    positive = sum(
        s.per_channel((s.param.detach() > 0).float().cpu(),
                      group.num_channels) for s in shifts)
    return positive[channels] > 0


def reinit_filters(group: ChannelGroup,
                   channels: torch.Tensor,
                   optimizers: Iterable[Optimizer] = (),
                   generator: Optional[torch.Generator] = None) -> None:
    """PGP's soft pruning: fresh He-normal filter weights, drawn from
    ``generator`` (the pruning hook's, saved in its checkpoints, so a
    resumed run draws the same weights; default: torch's global one)."""
    filters = _filters(group)
    with torch.no_grad():
        for s in filters:
            p = s.param
            pos = s.channel_positions(channels).to(p.device)
            fan_in = p.numel() // p.shape[s.dim]
            shape = p.index_select(s.dim, pos).shape
            device = p.device if generator is None else generator.device
            fresh = torch.randn(
                shape, generator=generator, dtype=p.dtype, device=device)
            p.index_copy_(s.dim, pos, fresh.to(p.device) * (2. / fan_in)**0.5)
    _reset_state(optimizers, filters, channels, FIRST_MOMENTS)


def mask_channels(group: ChannelGroup,
                  channels: torch.Tensor,
                  optimizers: Iterable[Optimizer] = (),
                  generator: Optional[torch.Generator] = None) -> None:
    """Make the channels output exactly zero: every parameter producing
    them (filters, biases, norm affine terms) and its optimizer state is
    zeroed. Removing such channels does not change the model's outputs."""
    _fill(group.producers, channels, 0.)
    _reset_state(optimizers, group.producers, channels)


hold_masked = mask_channels  # re-applied after every optimizer step


def release(group: ChannelGroup,
            channels: torch.Tensor,
            generator: Optional[torch.Generator] = None) -> None:
    """Let masked channels train again. A fully zeroed conv-BN-ReLU channel
    gets no gradient, so the filters restart from He-normal weights (from
    ``generator``) with a unit norm scale and zero shifts."""
    reinit_filters(group, channels, generator=generator)
    filters = {id(s) for s in _filters(group)}
    with torch.no_grad():
        for s in group.producers:
            if id(s) in filters:
                continue
            pos = s.channel_positions(channels).to(s.param.device)
            norm_scale = s.name == 'weight' and s.param.dim() == 1
            s.param.index_fill_(s.dim, pos, 1. if norm_scale else 0.)


SOFT_PRUNE = {
    'zero': zero_filters,
    'reinit': reinit_filters,
    'mask': mask_channels,
}
