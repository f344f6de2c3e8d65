"""The architecture of a pruned model, as saved in its checkpoints.

A pruned checkpoint's weights do not fit the model its config builds. The
record saved beside them says how every layer was reshaped, so that a fresh
model can be shrunk to it before the weights are loaded: ``--resume``,
``load_from``, ``tools/test.py`` and deployment all rebuild a pruned model
from the config and the checkpoint alone.

Record format (plain data, safe to unpickle)::

    {'channels': {layer name: [in channels, out channels]},
     'removed': [structure, ...]}   # only when structures were removed

for every conv, linear and norm layer whose counts Torch-Pruning knows,
with ``'attributes'`` and ``'scales'``: the channel counts that modules keep
outside those layers (``out_channels`` of an RoI extractor, ``L2Norm``'s
width, :mod:`.mirrors`);
``removed`` lists the residual blocks and branches removed whole, in the
order they went (:mod:`.structures`). They are repeated before the layers
are shrunk, since the layer names of the record are those after them.
"""
from typing import Dict, List

import torch.nn as nn
import torch_pruning as tp

from .mirrors import record_attributes, restore_attributes
from .structures import removed_structures, repeat_removals

ARCH_KEY = 'architecture'
_LAYERS = (nn.modules.conv._ConvNd, nn.Linear, nn.modules.batchnorm._NormBase,
           nn.GroupNorm, nn.LayerNorm, nn.PReLU)


def _pruner(module: nn.Module):
    if not isinstance(module, _LAYERS) or (isinstance(module, nn.PReLU) and
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


def record_architecture(model: nn.Module) -> dict:
    """What is needed to rebuild the pruned shapes of ``model``."""
    channels = {}
    for name, module in model.named_modules():
        pruner = _pruner(module)
        if pruner is not None:
            channels[name] = [
                pruner.get_in_channels(module),
                pruner.get_out_channels(module)
            ]
    record = {'channels': channels, **record_attributes(model)}
    removed = removed_structures(model)
    if removed:
        record['removed'] = removed
    return record


def restore_architecture(model: nn.Module, record: dict) -> List[str]:
    """Shrink a freshly built ``model`` to ``record`` (the values are then
    loaded from the checkpoint). Returns the names of the changed layers
    and removed structures.

    Raises ``KeyError``/``ValueError`` naming the layer when the record does
    not describe this model (another config, a wider checkpoint).
    """
    changed = repeat_removals(model, record.get('removed', []))
    channels: Dict[str, List[int]] = record.get('channels', record)
    modules = dict(model.named_modules())
    missing = sorted(set(channels) - set(modules))
    if missing:
        raise KeyError('the checkpoint records pruned layers that this model '
                       f'does not have: {missing[:5]}')
    for name, (num_in, num_out) in channels.items():
        module = modules[name]
        pruner = _pruner(module)
        if pruner is None:
            raise ValueError(f'{name} is a {type(module).__name__} in this '
                             'model, not a prunable layer as in the checkpoint')
        cur_in = pruner.get_in_channels(module)
        cur_out = pruner.get_out_channels(module)
        if num_out > cur_out or num_in > cur_in:
            raise ValueError(f'{name}: the checkpoint has {num_in}->{num_out} '
                             f'channels, this model only {cur_in}->{cur_out}')
        if num_out < cur_out:
            pruner.prune_out_channels(module, list(range(num_out, cur_out)))
        # norm layers share one count for in and out
        if num_in < cur_in and pruner.get_in_channels(module) > num_in:
            pruner.prune_in_channels(module, list(range(num_in, cur_in)))
        settle_group_norm(module)
        if (num_in, num_out) != (cur_in, cur_out):
            changed.append(name)
    return changed + restore_attributes(model, record)
