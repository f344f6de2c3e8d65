"""How to run a model for tracing its channel dependencies and FLOPs.

Tracing needs a forward pass whose outputs depend on every layer that reads
the pruned channels. ``model(inputs, mode='tensor')`` does that for
classifiers and most OpenMMLab models; models for which it does not (a
two-stage detector's RPN outputs are not returned in tensor mode) register
their own function here.
"""
from typing import Callable, Dict

import torch.nn as nn

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
