"""How to run a model for tracing its channel dependencies and FLOPs.

Tracing needs a forward pass whose outputs depend on every layer that reads
the pruned channels. ``model(inputs, mode='tensor')`` does that for
classifiers and most OpenMMLab models; models for which it does not (a
two-stage detector's RPN outputs are not returned in tensor mode) register
their own function here.

:class:`TraceRecorder` watches that one forward pass for what Torch-Pruning's
graph does not keep: the channels each module reads and writes (attributes
such as ``out_channels`` mirror them), the sizes of every ``torch.cat`` (the
autograd graph keeps only its dim), and which module is running (to say where
a trace got stuck).
"""
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import torch
import torch.nn as nn
from torch.overrides import TorchFunctionMode

_FORWARDS: Dict[type, Callable] = {}


def register_trace_forward(model_type: type):
    """Decorator: ``fn(model, inputs)`` traces models of ``model_type``."""

    def wrap(fn: Callable) -> Callable:
        _FORWARDS[model_type] = fn
        return fn

    return wrap


def tensor_forward(model: nn.Module, inputs):
    return model(inputs, mode='tensor')


def trace_forward(model: nn.Module) -> Callable:
    """The registered tracing function of the closest model class."""
    for cls in type(model).__mro__:
        if cls in _FORWARDS:
            return _FORWARDS[cls]
    return tensor_forward


def flat_tensors(value) -> List[torch.Tensor]:
    """The tensors in nested tuples, lists and dicts, in order."""
    if torch.is_tensor(value):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in flat_tensors(v)]
    return []


@dataclass
class Seen:
    """A tensor a module read or wrote: its autograd node (and which of that
    node's outputs it is) and its channels."""
    grad_fn: object
    output_nr: int
    channels: int


@dataclass
class ModuleIO:
    inputs: List[Seen] = field(default_factory=list)
    outputs: List[Seen] = field(default_factory=list)


@dataclass
class CatRecord:
    """One ``torch.cat``: the size of each input along ``dim``, and whether
    it carries a gradient (Torch-Pruning's graph only sees those that do)."""
    dim: int
    ndim: int
    sizes: List[int]
    traced: List[bool]


class _CatSizes(TorchFunctionMode):

    def __init__(self, cats: Dict[object, CatRecord]):
        super().__init__()
        self.cats = cats

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func in (torch.cat, torch.concat, torch.concatenate) and \
                torch.is_tensor(out) and out.grad_fn is not None:
            tensors = args[0] if args else kwargs.get('tensors')
            dim = args[1] if len(args) > 1 else kwargs.get('dim', 0)
            dim = dim + out.dim() if dim < 0 else dim
            self.cats[out.grad_fn] = CatRecord(
                dim, out.dim(), [t.shape[dim] for t in tensors],
                [t.grad_fn is not None or t.requires_grad for t in tensors])
        return out


class TraceRecorder:
    """Records, during one forward pass, each module's input and output
    tensors (first call only), every concat's sizes, and the stack of
    modules running (``where``)."""

    def __init__(self, model: nn.Module):
        self.model = model
        self.io: Dict[nn.Module, ModuleIO] = {}
        self.cats: Dict[object, CatRecord] = {}
        self._stack: List[str] = []
        self._handles = []
        self._mode: Optional[_CatSizes] = None

    @property
    def where(self) -> Optional[str]:
        """The innermost module whose forward is running, if any."""
        return self._stack[-1] if self._stack else None

    def __enter__(self):
        for name, module in self.model.named_modules():
            self._handles += [
                module.register_forward_pre_hook(self._enter(name)),
                module.register_forward_hook(self._leave(module)),
            ]
        self._mode = _CatSizes(self.cats)
        self._mode.__enter__()
        return self

    def __exit__(self, *exc):
        self._mode.__exit__(*exc)
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._stack = []

    def _enter(self, name: str):

        def hook(module, args):
            self._stack.append(name or type(module).__name__)

        return hook

    def _leave(self, module: nn.Module):

        def hook(mod, args, output):
            if self._stack:
                self._stack.pop()
            if module not in self.io:
                self.io[module] = ModuleIO(_seen(args), _seen(output))

        return hook


def _seen(value) -> List[Seen]:
    return [
        Seen(t.grad_fn, t.output_nr, int(t.shape[1]))
        for t in flat_tensors(value)
        if t.dim() >= 2
    ]
