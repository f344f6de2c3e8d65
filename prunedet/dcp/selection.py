"""DCP stage 2 for one layer: greedy channel selection (Algorithm 2).

The layer's weights start at zero for every input channel (none selected).
Each step adds the channel whose weights have the largest gradient norm
``||dL/dW_j||_F`` under the joint loss ``L`` (feature reconstruction plus
the next auxiliary head's CE), computed over a data pass, then solves the
sub-problem: SGD on the weights of the selected channels only, the others
held at zero. After ``keep`` steps the unselected channels carry zero
weights and can be removed without changing the layer's output.

Where the public code differs, the paper is followed:

* the score is the Frobenius norm of the whole slice ``dL/dW[:, j]`` (the
  code sums the norms of its ``k x k`` kernels over the output channels);
* only the weights are optimised in the sub-problem (the code also trains the
  layer's bias).

From the code: a newly selected channel starts from its trained weights
(``warm_start``), the sub-problem's optimizer is new at each step (SGD,
Nesterov, lr 0.01, momentum 0.9, weight decay 1e-4), and the budget is the
only stopping rule (the paper's second rule, on the loss change, is not
used).
"""
from collections import defaultdict
from typing import Callable, Dict, List

import torch
from mmengine.registry import OPTIMIZERS

from prunedet.pruning.groups import ParamSlice

Objective = Callable[[], Dict[str, torch.Tensor]]
SUB_OPTIMIZER = dict(
    type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4, nesterov=True)


def channel_scores(grad: torch.Tensor, weight: ParamSlice,
                   num_channels: int) -> torch.Tensor:
    """``||grad[:, j]||_F`` per input channel j of the group (every position
    of the channel along the slice's axis, e.g. the H*W inputs of a Linear
    after a flatten)."""
    return weight.per_channel(grad.detach()**2, num_channels).sqrt()


class GreedyChannelSelection:
    """Select ``keep`` input channels of one layer, one per :meth:`step`.

    Construction zeroes the layer's weight (no channel selected yet); the
    trained values are kept for warm starts.

    Args:
        weight: the layer's weight as a slice along its input-channel axis
            (the consumer slice of the channel group that feeds the layer).
        num_channels: channels of that group.
        objective: computes the joint loss on the next batch: a dict with
            ``'loss'`` (backpropagated) and any parts to log.
        grad_batches: batches per gradient pass (the paper: the whole
            training set).
        sub_steps: SGD steps of the sub-problem after each added channel.
        optimizer: config of the sub-problem's optimizer (mmengine's
            ``OPTIMIZERS``).
        warm_start: a selected channel starts from its trained weights
            (``False``: from zero).
        name: the layer's name, for messages.

    Raises ``FloatingPointError`` as soon as the loss diverges (a non-finite
    gradient or weight): a NaN ranking would pick channels by index.
    """

    def __init__(self,
                 weight: ParamSlice,
                 num_channels: int,
                 objective: Objective,
                 grad_batches: int,
                 sub_steps: int,
                 optimizer: dict = SUB_OPTIMIZER,
                 warm_start: bool = True,
                 name: str = 'the layer'):
        if grad_batches < 1 or sub_steps < 0:
            raise ValueError('grad_batches must be >= 1 and sub_steps >= 0, '
                             f'got {grad_batches} and {sub_steps}')
        self.weight = weight
        self.num_channels = num_channels
        self.objective = objective
        self.grad_batches = grad_batches
        self.sub_steps = sub_steps
        self.optimizer = dict(optimizer)
        self.warm_start = warm_start
        self.name = name
        param = weight.param
        self.trained = param.detach().clone()
        self.selected: List[int] = []
        self._mask = torch.zeros_like(param, dtype=torch.bool)
        param.requires_grad_(True)
        with torch.no_grad():
            param.zero_()

    @property
    def param(self) -> torch.nn.Parameter:
        return self.weight.param

    def _run(self, steps: int, update=None) -> Dict[str, float]:
        """``steps`` batches of the objective, backpropagated; ``update``
        after each backward pass. Returns the mean of each logged part."""
        sums: Dict[str, float] = defaultdict(float)
        for _ in range(steps):
            out = self.objective()
            out['loss'].backward()
            if update is not None:
                update()
            for key, value in out.items():
                sums[key] += float(value.detach()) if torch.is_tensor(
                    value) else float(value)
        return {k: v / max(steps, 1) for k, v in sums.items()}

    def scores(self) -> torch.Tensor:
        """One gradient pass at the current weights: ``||dL/dW_j||_F`` per
        channel (``-inf`` for the selected ones)."""
        self.param.grad = None
        self._run(self.grad_batches)
        scores = channel_scores(self.param.grad, self.weight,
                                self.num_channels)
        self.param.grad = None
        self._check(scores, 'gradient')
        scores[self.selected] = -float('inf')
        return scores

    def step(self) -> Dict[str, float]:
        """Add the channel with the largest gradient norm, then solve the
        sub-problem on the selected weights. Returns the channel, its score
        and the sub-problem's mean losses."""
        if len(self.selected) >= self.num_channels:
            raise RuntimeError('every channel is selected already')
        scores = self.scores()
        channel = int(scores.argmax())
        self.selected.append(channel)
        dim = self.weight.dim
        positions = self.weight.channel_positions(
            torch.tensor([channel])).to(self._mask.device)
        self._mask.index_fill_(dim, positions, True)
        with torch.no_grad():
            if self.warm_start:
                self.param.index_copy_(
                    dim, positions, self.trained.index_select(dim, positions))
        stats = dict(channel=channel, score=float(scores[channel]))
        stats.update(self._solve())
        return stats

    def _solve(self) -> Dict[str, float]:
        """SGD on the selected weights; the others stay exactly zero."""
        if self.sub_steps == 0:
            return {}
        param = self.param
        optimizer = OPTIMIZERS.build(dict(self.optimizer, params=[param]))

        def update():
            param.grad.mul_(self._mask)
            optimizer.step()
            optimizer.zero_grad()
            with torch.no_grad():
                param.mul_(self._mask)

        param.grad = None
        try:
            return self._run(self.sub_steps, update)
        finally:
            param.grad = None
            self._check(param.detach(), 'weights after the sub-problem')

    def _check(self, values: torch.Tensor, what: str) -> None:
        if not torch.isfinite(values).all():
            raise FloatingPointError(
                f'DCP selection of {self.name}: non-finite {what} with '
                f'{len(self.selected)} channels selected; the sub-problem '
                'diverged (lower its learning rate, train_cfg.optimizer.lr, '
                'or check the stage-1 model)')

    def run(self, keep: int) -> List[int]:
        """Steps until ``keep`` channels are selected; the selection."""
        while len(self.selected) < keep:
            self.step()
        return self.selected

    def unselected(self) -> List[int]:
        chosen = set(self.selected)
        return [c for c in range(self.num_channels) if c not in chosen]
