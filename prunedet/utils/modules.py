"""Finding the layer behind a point of a model."""
from typing import Optional, Tuple, Type

import torch.nn as nn


def last_layer_up_to(model: nn.Module, name: str,
                     types: Tuple[Type[nn.Module], ...]
                     ) -> Optional[nn.Module]:
    """The last module of ``types`` registered up to the end of module
    ``name``'s subtree: its own last such layer, or, for a module without
    one (an activation, a pooling), the layer registered before it (in
    sequential models registration follows the forward order)."""
    layer, inside = None, False
    for n, m in model.named_modules():
        within = n == name or n.startswith(name + '.')
        if inside and not within:
            break
        inside = inside or within
        if isinstance(m, types):
            layer = m
    return layer
