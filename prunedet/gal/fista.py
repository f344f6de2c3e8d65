"""FISTA for GAL's masks: proximal gradient steps with Nesterov momentum.

Beck & Teboulle's FISTA on ``f(m) + lambda * ||m||_1`` with ``m >= 0``
(GAL's mask problem; f is the data and adversarial loss)::

    x_k     = prox(y_k - lr * grad f(y_k))      prox(v) = max(v - lr*lambda, 0)
    t_{k+1} = (1 + sqrt(1 + 4 t_k^2)) / 2
    y_{k+1} = x_k + (t_k - 1) / t_{k+1} * (x_k - x_{k-1})

The gradient is taken at the extrapolated point ``y_k``: the masks hold
``x_k`` between iterations (what validation, checkpoints and the removal
see, exactly sparse and non-negative) and :meth:`FISTA.extrapolate` moves
them to ``y_k`` for the forward pass whose gradient :meth:`FISTA.step`
uses. The L1 term enters only through the prox (soft-thresholding, torch's
``softshrink``, then the clamp at 0); it must not be in the loss as well.

Restart (O'Donoghue & Candes 2015; an addition, not in the GAL paper, which
runs plain FISTA; ``restart=False`` gives the paper's method): the momentum
is dropped (``t = 1``)
when the step goes against it, ``<y_k - x_k, x_k - x_{k-1}> > 0``, and when
the learning rate changed since the previous step (a new step size, as at
an lr decay).

Differences from GAL's public ``fista.py``: there the gradient is taken at
``x_k`` and applied at ``y_k``, the L1 subgradient is also added to the loss
(sparsity counted twice) and the restart flag never reaches a step.
"""
import math
from typing import Callable, Iterable, Optional

import torch
import torch.nn.functional as F
from mmengine.registry import OPTIMIZERS
from torch.optim import Optimizer


@OPTIMIZERS.register_module()
class FISTA(Optimizer):
    """Args:
        params: the masks.
        lr: the gradient step (the prox threshold is ``lr * sparsity``).
        sparsity: lambda, the weight of ``||m||_1`` (GAL-0.01, ... name it).
        restart: adaptive restart of the momentum (see the module doc;
            not part of GAL's paper).
    """

    def __init__(self,
                 params: Iterable,
                 lr: float = 0.01,
                 sparsity: float = 0.01,
                 restart: bool = True):
        for name, value, low in (('lr', lr, 0.), ('sparsity', sparsity, 0.)):
            if isinstance(value, bool) or not isinstance(
                    value, (int, float)) or not math.isfinite(value) or \
                    value < low or (name == 'lr' and value == 0):
                bound = '> 0' if name == 'lr' else '>= 0'
                raise ValueError(
                    f'FISTA: {name} must be a finite number {bound}, got '
                    f'{value!r}')
        super().__init__(
            params, dict(lr=lr, sparsity=sparsity, restart=bool(restart)))

    @torch.no_grad()
    def extrapolate(self) -> None:
        """Move every parameter from ``x_k`` to ``y_{k+1}``; call before the
        forward pass whose gradient the next :meth:`step` takes."""
        for group in self.param_groups:
            for p in group['params']:
                state = self.state[p]
                if state.get('extrapolated'):
                    raise RuntimeError('FISTA.extrapolate() twice without a '
                                       'step() in between')
                if 'previous' not in state:  # y_1 = x_0, t_1 = 1
                    state['previous'] = p.detach().clone()
                    state['t'] = 1.
                else:
                    t = state['t']
                    t_next = (1. + math.sqrt(1. + 4. * t * t)) / 2.
                    momentum = (t - 1.) / t_next
                    x = p.detach().clone()
                    p.add_(x - state['previous'], alpha=momentum)
                    state['previous'], state['t'] = x, t_next
                state['extrapolated'] = True

    @torch.no_grad()
    def step(self, closure: Optional[Callable] = None):
        """One proximal gradient step from ``y_k`` (the parameters now) with
        the gradient there; the parameters become ``x_k``."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, threshold = group['lr'], group['lr'] * group['sparsity']
            along = 0.  # <y_k - x_k, x_k - x_{k-1}> over the group
            stepped = []
            for p in group['params']:
                state = self.state[p]
                if not state.get('extrapolated'):
                    if p.grad is None:
                        continue
                    raise RuntimeError(
                        'FISTA.step(): the gradient must be taken at the '
                        'extrapolated point; call extrapolate() before the '
                        'forward pass')
                state['extrapolated'] = False
                if p.grad is None:  # unused this pass: back to x_k
                    p.copy_(state['previous'])
                    continue
                y = p.detach().clone()
                x = F.softshrink(y - lr * p.grad, threshold).clamp_(min=0)
                along += float(((y - x) * (x - state['previous'])).sum())
                p.copy_(x)
                stepped.append(state)
            lr_changed = any(s.get('lr', lr) != lr for s in stepped)
            for state in stepped:
                if group['restart'] and (along > 0 or lr_changed):
                    state['t'] = 1.
                state['lr'] = lr
        return loss
