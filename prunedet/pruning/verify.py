"""Trying every channel group on a copy of the model before anything is cut.

The coupling of a group is inferred from one traced forward pass. An op whose
channel layout that inference gets wrong (a roll or flip of the channels, a
softmax over them, a split of constant size, an index into them) would be
cut into a model that computes something else, or that fails at the next
forward pass, in the middle of training. So before the first prune a copy of
the model loses one channel of every group and must give the outputs of the
model with that channel masked to zero (weights, biases and norm terms), and
then once more on the graph that removal left, as at a second pruning step
(bookkeeping that goes stale after a prune, such as a concat's offsets,
shows only then); a group that does not keeps its channels, with the reason
in the log.

The same copy is then cut down to one channel per group and must still run
with outputs of the same dimensions: a model that squeezes its features
(mmpretrain's ``LeNet5`` calls ``x.squeeze()`` on 1x1 maps) loses the channel
dimension of a one-channel layer, so such a group keeps two.
"""
import copy
import logging
from typing import Callable, Dict, List, Optional

import torch
import torch.nn as nn
from mmengine.logging import print_log

from .soft import mask_channels
from .surgery import remove_channels
from .tracing import flat_tensors

RTOL = 1e-4  # of the largest output magnitude (float32 reorderings)


def _outputs(model: nn.Module, inputs, forward_fn) -> List[torch.Tensor]:
    """Eval-mode outputs: the model may be training (the hook verifies it
    at the first iteration), and a training forward pass would move its
    norm statistics, or fail on one sample of 1x1 maps."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return [t.detach().clone() for t in
                    flat_tensors(forward_fn(model, inputs))]
    finally:
        model.train(was_training)


def _failure(error: Exception) -> str:
    return f'{type(error).__name__}: {str(error).splitlines()[0]}'


def _mismatch(masked: List[torch.Tensor],
              pruned: List[torch.Tensor]) -> Optional[str]:
    if [t.shape for t in masked] != [t.shape for t in pruned]:
        return 'the outputs change shape'
    scale = max((t.abs().max().item() for t in masked if t.numel()),
                default=0.)
    error = max(((a - b).abs().max().item()
                 for a, b in zip(masked, pruned) if a.numel()), default=0.)
    if not error <= RTOL * scale + 1e-6:  # NaN fails too
        return (f'the outputs change by {error:.3g} (largest output '
                f'{scale:.3g})')
    return None


class _Trial:
    """A copy of the model with its own graph, in eval mode."""

    def __init__(self, graph, inputs, forward_fn):
        self.model = copy.deepcopy(graph.model).eval()
        self.graph = type(graph)(self.model, inputs, forward_fn,
                                  graph.prunable, graph.skip, timeout=None)
        self.inputs = inputs
        self.forward_fn = forward_fn

    def groups(self, names) -> list:
        return [g for g in self.graph.groups(names) if g.num_channels > 1]

    def cut(self, names) -> Optional[str]:
        """Mask channel 0 of each group, then remove it, twice (the second
        time on the graph the first removal left, as at a second pruning
        step): why the removed model differs from the masked one, or
        ``None``."""
        for _ in range(2):
            groups = self.groups(names)
            for g in groups:
                mask_channels(g, torch.tensor([0]))
            masked = _outputs(self.model, self.inputs, self.forward_fn)
            try:
                for g in groups:
                    remove_channels(self.graph, g, [0])
                pruned = _outputs(self.model, self.inputs, self.forward_fn)
            except Exception as error:  # noqa: BLE001  (it is the answer)
                return _failure(error)
            reason = _mismatch(masked, pruned)
            if reason is not None:
                return reason
        return None

    def thin(self, names, dims) -> Optional[str]:
        """Cut each group down to its first channel: why the model then
        fails or its outputs change dimensions, or ``None``."""
        try:
            for name in names:
                for current in self.groups([name]):
                    remove_channels(self.graph, current,
                                    list(range(1, current.num_channels)))
            out = _outputs(self.model, self.inputs, self.forward_fn)
        except Exception as error:  # noqa: BLE001
            return _failure(error)
        if [t.dim() for t in out] != dims:  # sizes may depend on data
            return 'the outputs lose or gain dimensions'
        return None


def _try_groups(graph, inputs, forward_fn, attempt, trial=None):
    """``attempt(trial, names)`` gives why a change to a copy of the model
    went wrong, or ``None``. It is tried on all groups at once (on ``trial``
    if given); only if that fails, group by group on one copy, each on top
    of the groups that passed before it (some fail only together with
    others, as the pruning steps will cut them); after a failure the copy
    is made anew with those that passed. Returns the failures, and the copy
    when all passed at once (the next check can go on from it)."""
    names = [graph.names[r] for r in graph.roots]  # in module order
    trial = trial or _Trial(graph, inputs, forward_fn)
    if attempt(trial, names) is None:
        return {}, trial
    failed, passed = {}, []
    trial = _Trial(graph, inputs, forward_fn)
    for name in names:
        reason = attempt(trial, [name])
        if reason is None:
            passed.append(name)
            continue
        failed[name] = reason
        trial = _Trial(graph, inputs, forward_fn)
        if passed and attempt(trial, passed) is not None:
            trial = _Trial(graph, inputs, forward_fn)  # the rest alone
    return failed, None


def verify_groups(graph, inputs, forward_fn: Callable):
    """The groups of ``graph`` whose removal is not what their masking is,
    with the reason; and the copy, if every group passed."""
    return _try_groups(graph, inputs, forward_fn, _Trial.cut)


def one_channel_failures(graph, inputs, forward_fn,
                         trial=None) -> Dict[str, str]:
    """The groups of ``graph`` the model cannot run with at one channel,
    with the reason (going on from ``trial``, a copy that passed
    :func:`verify_groups`, when given)."""
    dims = [t.dim() for t in _outputs(graph.model, inputs, forward_fn)]
    return _try_groups(graph, inputs, forward_fn,
                       lambda t, names: t.thin(names, dims), trial)[0]


def verify_graph(graph, inputs, forward_fn: Callable) -> List[str]:
    """Try every group of ``graph`` on a copy of the model and keep the
    channels of those whose removal would not be what masking them is
    (and a floor of 2 channels where one breaks the model). Returns the
    names of the groups kept whole."""
    failed, trial = verify_groups(graph, inputs, forward_fn)
    for name, reason in failed.items():
        graph.note_kept(
            name, 'on a copy of the model, removing one of its channels '
            f'is not what zeroing it is ({reason}): an op between its '
            'layers moves or mixes channels in a way the graph does not '
            'model')
    graph.roots = [r for r in graph.roots if graph.names[r] not in failed]
    for name, reason in one_channel_failures(graph, inputs, forward_fn,
                                             trial).items():
        graph.floors[name] = 2
        print_log(
            f'Pruning: {name} keeps at least 2 channels: on a copy of '
            f'the model cut to one channel, {reason}', logger='current',
            level=logging.INFO)
    return list(failed)
