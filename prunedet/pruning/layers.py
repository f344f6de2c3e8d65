"""The layers whose channel counts an architecture record lists, and how
one of them takes a recorded shape.

Shared by :mod:`.architecture`, which reshapes the model, and
:mod:`.record_schema`, which first reshapes a weightless (``meta``) copy of
each layer to see that the record fits the layer and its saved weights.
"""
import copy

import torch
import torch.nn as nn
import torch_pruning as tp

LAYERS = (nn.modules.conv._ConvNd, nn.Linear, nn.modules.batchnorm._NormBase,
          nn.GroupNorm, nn.LayerNorm, nn.PReLU)


def layer_pruner(module: nn.Module):
    """Torch-Pruning's pruner of a recorded layer, ``None`` if ``module`` is
    not one."""
    if not isinstance(module, LAYERS) or (isinstance(module, nn.PReLU) and
                                          module.num_parameters == 1):
        return None  # a shared PReLU slope fits any width
    return tp.pruner.function.PrunerBox.get(tp.ops.module2type(module))


def settle_group_norm(module: nn.Module) -> None:
    """A per-channel GroupNorm (one group per channel, the only kind that
    can lose channels) keeps one group per channel: Torch-Pruning cuts its
    channels but not ``num_groups``."""
    if isinstance(module, nn.GroupNorm) and \
            module.num_groups > module.num_channels:
        module.num_groups = module.num_channels


def reshape_layer(module: nn.Module, pruner, num_in: int,
                  num_out: int) -> None:
    """Keep the first ``num_in``/``num_out`` channels of a fresh layer (its
    values are loaded afterwards). Norm and depthwise layers have one count
    for both sides: cutting one side cuts the other."""
    cur_in = pruner.get_in_channels(module)
    cur_out = pruner.get_out_channels(module)
    if num_out < cur_out:
        pruner.prune_out_channels(module, list(range(num_out, cur_out)))
    if num_in < cur_in and pruner.get_in_channels(module) > num_in:
        pruner.prune_in_channels(module, list(range(num_in, cur_in)))
    settle_group_norm(module)


def weightless(module: nn.Module) -> nn.Module:
    """A copy of ``module`` whose parameters and buffers are on the ``meta``
    device: it can be reshaped at no memory cost, the module untouched."""
    clone = copy.copy(module)  # its own __dict__, shared values
    clone._parameters = {
        k: None if v is None else nn.Parameter(
            torch.empty_like(v, device='meta'), v.requires_grad)
        for k, v in module._parameters.items()
    }
    clone._buffers = {
        k: None if v is None else torch.empty_like(v, device='meta')
        for k, v in module._buffers.items()
    }
    clone._modules = {}
    return clone


def shapes(module: nn.Module) -> dict:
    """``{parameter or buffer name: shape}`` of the layer itself."""
    found = {}
    for kind in (module._parameters, module._buffers):
        found.update({k: tuple(v.shape) for k, v in kind.items()
                      if v is not None})
    return found

