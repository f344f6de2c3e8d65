"""Module attributes that mirror channel counts, kept equal to the weights.

OpenMMLab modules copy channel counts into attributes when they are built,
and some read them at forward time: ``SingleRoIExtractor`` allocates its RoI
feature buffer with ``out_channels``, heads keep ``in_channels`` and
``feat_channels``, ``L2Norm`` its ``n_dims``. A hard prune changes weights,
not attributes, so afterwards they lie (the RoI extractor then writes
231-channel features into a 256-channel buffer). While the graph is traced,
each such attribute (an int or a list of ints named ``*channels``,
``*features``, ``*planes``, ``*dim(s)``) is matched to what it equals:

* ``in*`` names: the channels of the tensors the module reads, else the
  inputs of the first of its layers that reads that many (ResNet's
  ``inplanes``, ShuffleNet's ``in_channels``: what its last blocks read);
* ``out*`` names: of the tensors it writes, else of one of its layers;
* other names (``feat_channels``, ``mid_channels``, ``n_dims``): the output
  channels of the first of its own layers with that width, else its output,
  else its input.

After every prune each matched attribute is set from its source again.
Pruned checkpoints carry the values (:func:`record_attributes`), so a model
rebuilt from one gets them without tracing.
"""
import re
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, Optional

import torch.nn as nn
from torch_pruning.dependency.node import Node

from .coupling import ChannelScalePruner, _scale_dims, node_channels
from .tracing import ModuleIO, Seen

NAME = re.compile(r'(channels|features|planes|dims?)$')
# layers whose counts Torch-Pruning's own pruners keep
MANAGED = (nn.modules.conv._ConvNd, nn.Linear, nn.modules.batchnorm._NormBase,
           nn.GroupNorm, nn.LayerNorm, nn.PReLU, nn.Embedding,
           nn.MultiheadAttention, nn.RNNBase)
_LAYERS = (nn.modules.conv._ConvNd, nn.Linear)

Read = Callable[[], Optional[int]]


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) \
        and value > 0


def _counts(value) -> Optional[List[int]]:
    """An attribute's value as a list of counts, or None if it is not one."""
    if _is_count(value):
        return [value]
    if isinstance(value, (list, tuple)) and value and all(
            _is_count(v) for v in value):
        return list(value)
    return None


def channel_attributes(module: nn.Module) -> Dict[str, object]:
    """The channel-count attributes of ``module`` (none for layers whose
    counts Torch-Pruning keeps)."""
    if isinstance(module, MANAGED):
        return {}
    return {
        k: v
        for k, v in vars(module).items()
        if not k.startswith('_') and NAME.search(k) and _counts(v)
    }


@dataclass
class Mirror:
    """``module.attr`` equals what ``reads`` return (one per element)."""
    module: nn.Module
    name: str
    attr: str
    reads: List[Read]

    def sync(self) -> bool:
        """Set the attribute from its source; True if it changed."""
        values = [read() for read in self.reads]
        old = getattr(self.module, self.attr)
        if None in values:
            return False
        new = values[0] if _is_count(old) else type(old)(values)
        if new == old:
            return False
        setattr(self.module, self.attr, new)
        return True


def _layer_out(layer: nn.Module) -> Read:
    return lambda: getattr(layer, 'out_channels',
                           getattr(layer, 'out_features', None))


def _layer_in(layer: nn.Module) -> Read:
    return lambda: getattr(layer, 'in_channels',
                           getattr(layer, 'in_features', None))


class _Sources:
    """Where an attribute's value can come from, for one traced model."""

    def __init__(self, dg, io: Dict[nn.Module, ModuleIO]):
        self.dg = dg
        self.io = io
        self.node_of: Dict[object, Node] = {
            n.grad_fn: n
            for n in dg.module2node.values() if n.grad_fn is not None
        }

    def tensors(self, seen: List[Seen], want: List[int]
                ) -> Optional[List[Read]]:
        """Readers for tensors whose channels are ``want`` now."""
        if len(want) == 1:
            seen = seen[:1]
        if len(seen) != len(want):
            return None
        reads = []
        for s, count in zip(seen, want):
            node = self.node_of.get(s.grad_fn)
            if node is None or s.channels != count:
                return None
            read = (lambda n, nr: lambda: node_channels(self.dg, n, nr))(
                node, s.output_nr)
            if read() != count:
                return None
            reads.append(read)
        return reads

    def layers(self, module: nn.Module, want: List[int], side: str = 'out'
               ) -> Optional[List[Read]]:
        """The first of the module's own layers with ``want`` outputs (or
        inputs)."""
        if len(want) != 1:
            return None
        width = _layer_out if side == 'out' else _layer_in
        for layer in module.modules():
            if layer is not module and isinstance(layer, _LAYERS) and \
                    width(layer)() == want[0]:
                return [width(layer)]
        return None

    def find(self, module: nn.Module, attr: str, want: List[int]
             ) -> Optional[List[Read]]:
        io = self.io.get(module)
        ins = (lambda: self.tensors(io.inputs, want)) if io else \
            (lambda: None)
        outs = (lambda: self.tensors(io.outputs, want)) if io else \
            (lambda: None)
        own = (lambda: self.layers(module, want))
        own_in = (lambda: self.layers(module, want, 'in'))
        if attr.startswith('in'):  # ResNet's inplanes: what a block reads
            order = (ins, own_in)
        elif attr.startswith('out'):
            order = (outs, own)
        else:
            order = (own, outs, ins)
        for source in order:
            reads = source()
            if reads is not None:
                return reads
        return None


def find_mirrors(model: nn.Module, dg, io: Dict[nn.Module, ModuleIO]
                 ) -> List[Mirror]:
    """The attributes of ``model`` that mirror a channel count, traced."""
    sources = _Sources(dg, io)
    mirrors = []
    for name, module in model.named_modules():
        for attr, value in channel_attributes(module).items():
            reads = sources.find(module, attr, _counts(value))
            if reads is not None:
                mirrors.append(Mirror(module, name, attr, reads))
    return mirrors


def sync_mirrors(mirrors: Iterable[Mirror],
                 copies: Iterable[nn.Module] = ()) -> List[str]:
    """Set every mirrored attribute from the weights again (and the same
    attributes of ``copies``, models with the same module names, e.g. an
    EMA model). Returns ``'module.attr'`` of those that changed."""
    changed = [f'{m.name}.{m.attr}' for m in mirrors if m.sync()]
    for copy in copies:
        modules = dict(copy.named_modules())
        for m in mirrors:
            setattr(modules[m.name], m.attr, getattr(m.module, m.attr))
    return changed


# --- in checkpoints ----------------------------------------------------


def record_attributes(model: nn.Module) -> dict:
    """Channel counts outside the layers Torch-Pruning knows, as plain data:
    every channel-count attribute, and the width of per-channel-scale
    modules (``L2Norm``)."""
    attributes, scales = {}, {}
    for name, module in model.named_modules():
        found = channel_attributes(module)
        if found:
            attributes[name] = {
                k: list(v) if isinstance(v, tuple) else v
                for k, v in found.items()
            }
        dims = _scale_dims(module)
        if dims:
            scales[name] = ChannelScalePruner(dims).get_out_channels(module)
    return {'attributes': attributes, 'scales': scales}


def restore_attributes(model: nn.Module, record: dict) -> List[str]:
    """Give a freshly built ``model`` the recorded channel attributes and
    cut its per-channel-scale modules to the recorded width (their values
    are loaded with the checkpoint). Returns the names of modules whose
    parameters changed. The record was checked first
    (:func:`~.record_schema.check_record`): only the attributes
    :func:`channel_attributes` finds, no wider than they are."""
    modules = dict(model.named_modules())
    for name, found in record.get('attributes', {}).items():
        module = modules.get(name)
        if module is None:
            raise KeyError(f'the checkpoint records channel attributes of '
                           f'{name}, which this model does not have')
        for attr, value in found.items():
            old = getattr(module, attr, None)
            setattr(module, attr,
                    tuple(value) if isinstance(old, tuple) else value)
    changed = []
    for name, width in record.get('scales', {}).items():
        module = modules.get(name)
        dims = _scale_dims(module) if module is not None else None
        if dims is None:
            raise KeyError(f'the checkpoint records a per-channel scale '
                           f'{name}, which this model does not have')
        pruner = ChannelScalePruner(dims)
        current = pruner.get_out_channels(module)
        if width > current:
            raise ValueError(f'{name}: the checkpoint has {width} channels, '
                             f'this model only {current}')
        if width < current:
            pruner.prune_out_channels(module, range(width, current))
            changed.append(name)
    return changed
