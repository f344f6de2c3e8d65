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
from typing import List, Optional

import torch.nn as nn

from .layers import layer_pruner, reshape_layer
from .mirrors import record_attributes, restore_attributes
from .record_schema import check_record
from .structures import removed_structures, repeat_removals

ARCH_KEY = 'architecture'


def record_architecture(model: nn.Module) -> dict:
    """What is needed to rebuild the pruned shapes of ``model``."""
    channels = {}
    for name, module in model.named_modules():
        pruner = layer_pruner(module)
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


def restore_architecture(model: nn.Module, record: dict,
                         weights: Optional[dict] = None) -> List[str]:
    """Shrink a freshly built ``model`` to ``record`` (the values are then
    loaded from the checkpoint). Returns the names of the changed layers
    and removed structures.

    The whole record is checked first (:mod:`.record_schema`), against
    ``weights`` too when given (the checkpoint's state dict): a record that
    does not describe this model (another config, a wider or damaged
    checkpoint) raises :class:`ArchitectureRecordError` naming the layer and
    the field, and the model is left untouched.
    """
    if isinstance(record, dict) and 'channels' not in record and all(
            isinstance(v, (list, tuple)) for v in record.values()):
        record = {'channels': record}  # the oldest records: channels only
    check_record(model, record, weights)
    changed = repeat_removals(model, record.get('removed', []))
    modules = dict(model.named_modules())
    for name, (num_in, num_out) in record.get('channels', {}).items():
        module = modules[name]
        pruner = layer_pruner(module)
        before = (pruner.get_in_channels(module),
                  pruner.get_out_channels(module))
        reshape_layer(module, pruner, num_in, num_out)
        if (num_in, num_out) != before:
            changed.append(name)
    return changed + restore_attributes(model, record)
