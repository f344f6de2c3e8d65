"""Intermediate features by module name, read with forward hooks.

DCP attaches its losses to named points inside an unmodified network (an
mmpretrain backbone knows nothing of them), so the features are taken with
forward hooks instead of changing any ``forward``. Channel selection also
needs only the network up to the next auxiliary point: :func:`run_until`
stops the forward pass there instead of computing the rest.
"""
from contextlib import contextmanager
from typing import Callable, Dict, Iterator, List, Sequence

import torch
import torch.nn as nn


def named(model: nn.Module, names: Sequence[str],
          what: str) -> List[nn.Module]:
    """The modules called ``names``; a name that does not exist is an error
    naming it (a typo in a config fails before anything runs)."""
    modules = dict(model.named_modules())
    missing = [n for n in names if n not in modules]
    if missing:
        raise ValueError(f'{what} names modules that do not exist in '
                         f'{type(model).__name__}: {missing}')
    return [modules[n] for n in names]


@contextmanager
def capture(modules: Sequence[nn.Module]) -> Iterator[Dict[int, torch.Tensor]]:
    """``{i: output of modules[i]}`` for the forward passes run inside."""
    outputs: Dict[int, torch.Tensor] = {}
    handles = [
        m.register_forward_hook(
            lambda _m, _i, out, i=i: outputs.__setitem__(i, out))
        for i, m in enumerate(modules)
    ]
    try:
        yield outputs
    finally:
        for handle in handles:
            handle.remove()


class _Reached(Exception):

    def __init__(self, output):
        super().__init__()
        self.output = output


def _stop(_module, _inputs, output):
    raise _Reached(output)


def run_until(module: nn.Module, forward: Callable[[], object]):
    """The output of ``module`` in ``forward()``, stopping the pass there.

    Raises ``RuntimeError`` if ``forward`` never runs ``module``.
    """
    handle = module.register_forward_hook(_stop)
    try:
        forward()
    except _Reached as reached:
        return reached.output
    finally:
        handle.remove()
    raise RuntimeError(f'the forward pass never ran {type(module).__name__}')


def completion_order(modules: Sequence[nn.Module],
                     forward: Callable[[], object]) -> List[int]:
    """Position of each module in the order its forward pass finishes (a
    block finishes after the layers inside it); -1 if it never runs."""
    done: List[int] = []
    handles = [
        m.register_forward_hook(lambda *_, i=i: done.append(i))
        for i, m in enumerate(modules)
    ]
    try:
        forward()
    finally:
        for handle in handles:
            handle.remove()
    first = {}
    for position, i in enumerate(done):
        first.setdefault(i, position)
    return [first.get(i, -1) for i in range(len(modules))]
