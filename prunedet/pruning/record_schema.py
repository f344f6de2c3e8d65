"""What an architecture record may ask of a model, checked before it is
obeyed.

A checkpoint's record (:mod:`.architecture`) is plain data, but restoring
it reshapes modules, sets attributes and deletes structures: a record that
was edited, damaged or written for another model could allocate terabytes
(``out_channels=10**9``), set ``forward`` on a module or swap a whole stage
for an identity. :func:`check_record` checks all of it against the freshly
built model first, and the model is only changed once all of it passed:

* ``channels``: layers of this model (after the recorded removals) that
  Torch-Pruning knows, ``[in, out]`` integers in 1..current, equal to what
  the layer has once cut to them, and to the checkpoint's weights;
* ``attributes``: only the channel-count attributes that
  :func:`~.mirrors.record_attributes` would write for that module, in
  1..current (a list keeps its length);
* ``scales``: per-channel-scale modules, a width in 1..current;
* ``removed``: blocks and branches that :func:`~.structures.removal_problem`
  allows;
* no other keys.

The hook's ``pruning`` state gets the same treatment
(:func:`check_pruning_state`). Every refusal is one
:class:`ArchitectureRecordError` naming the layer and the field; the
loaders add the file.
"""
import math
import numbers
from typing import Dict, Iterable, Optional

import torch
import torch.nn as nn

from .coupling import ChannelScalePruner, _scale_dims
from .layers import layer_pruner, reshape_layer, shapes, weightless
from .mirrors import _counts, channel_attributes
from .structures import (KINDS, after_removal, removal_problem,
                         removed_structures)

RECORD_KEYS = ('channels', 'attributes', 'scales', 'removed')
_REMOVAL_KEYS = {'block': {'kind', 'name', 'shortcut', 'activation'},
                 'branch': {'kind', 'name'}}


class ArchitectureRecordError(ValueError):
    """A checkpoint's architecture record (or pruning state) that this model
    must not obey; names the file, the layer and the field."""

    def __init__(self, problem: str, layer: Optional[str] = None,
                 field: Optional[str] = None, file: Optional[str] = None):
        self.problem, self.layer, self.field, self.file = \
            problem, layer, field, file
        super().__init__(problem, layer, field, file)

    def __str__(self) -> str:
        what = 'pruning state' if (self.field or '').startswith(
            'pruning') else 'architecture record'
        where = [f'checkpoint {self.file!r}' if self.file else 'checkpoint',
                 f'refused its {what}']
        if self.layer is not None:
            where.append(f'layer {self.layer!r}')
        if self.field is not None:
            where.append(f'field {self.field!r}')
        return ', '.join(where) + f': {self.problem}'

    def in_file(self, file: str) -> 'ArchitectureRecordError':
        """The same refusal, naming the file it came from."""
        return type(self)(self.problem, self.layer, self.field,
                          self.file or file)


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _count(value, current, layer: str, field: str) -> None:
    """``value`` must be an integer in 1..``current``."""
    if not _is_int(value) or not 1 <= value <= current:
        raise ArchitectureRecordError(
            f'{value!r} is not an integer in 1..{current} (this model has '
            f'{current}; a pruned model has no more)', layer, field)


def _mapping(value, field: str, layer: Optional[str] = None) -> dict:
    if not isinstance(value, dict):
        raise ArchitectureRecordError(
            f'must be a mapping, got {type(value).__name__}', layer, field)
    bad = [k for k in value if not isinstance(k, str)]
    if bad:
        raise ArchitectureRecordError(f'names must be strings, got {bad[0]!r}',
                                      layer, field)
    return value


def _module(modules: Dict[str, nn.Module], name: str,
            field: str) -> nn.Module:
    if name not in modules:
        raise ArchitectureRecordError(
            'this model has no such module (a checkpoint of another config, '
            'or a damaged record)', name, field)
    return modules[name]


def _plan_removals(model: nn.Module, removed) -> Dict[str, nn.Module]:
    """The model's modules by name once the recorded removals are made."""
    if not isinstance(removed, (list, tuple)):
        raise ArchitectureRecordError(
            f'must be a list, got {type(removed).__name__}', field='removed')
    done = {(r['kind'], r['name']) for r in removed_structures(model)}
    modules = dict(model.named_modules())
    for i, entry in enumerate(removed):
        field = f'removed[{i}]'
        name = entry.get('name') if isinstance(entry, dict) else None
        layer = name if isinstance(name, str) else None
        if not isinstance(entry, dict) or entry.get('kind') not in KINDS:
            raise ArchitectureRecordError(
                f'must be a mapping with kind in {KINDS}, got {entry!r}'[:300],
                layer, field)
        kind = entry['kind']
        unknown = sorted(map(str, set(entry) - _REMOVAL_KEYS[kind]))
        if unknown:
            raise ArchitectureRecordError(f'unknown keys {unknown}', layer,
                                          field)
        if layer is None:
            raise ArchitectureRecordError(
                f'name must be a module name, got {name!r}'[:300],
                field=field)
        if (kind, name) in done:
            continue
        args = (kind, name, entry.get('shortcut'), entry.get('activation'))
        problem = removal_problem(modules, *args)
        if problem:
            raise ArchitectureRecordError(
                f'cannot remove this {kind}: {problem}', layer, field)
        modules = after_removal(modules, *args)
    return modules


def _by_module(weights: Optional[dict]) -> Dict[str, dict]:
    """A checkpoint's state dict as ``{module name: {key: tensor}}``."""
    found: Dict[str, dict] = {}
    for key, value in (weights or {}).items():
        if isinstance(key, str) and torch.is_tensor(value):
            key = key[len('module.'):] if key.startswith('module.') else key
            module, _, attr = key.rpartition('.')
            found.setdefault(module, {})[attr] = value
    return found


def _fits_weights(clone: nn.Module, saved: dict, layer: str,
                  field: str) -> None:
    for key, shape in shapes(clone).items():
        value = saved.get(key)
        if torch.is_tensor(value) and tuple(value.shape) != shape:
            raise ArchitectureRecordError(
                f'the layer would hold {key} of shape {list(shape)}, but the '
                f'checkpoint\'s weights are {list(value.shape)}', layer, field)


def _check_channels(modules, channels, weights) -> None:
    for name, counts in channels.items():
        module = _module(modules, name, 'channels')
        pruner = layer_pruner(module)
        if pruner is None:
            raise ArchitectureRecordError(
                f'a {type(module).__name__} in this model, not a layer whose '
                'channels a record lists', name, 'channels')
        if not isinstance(counts, (list, tuple)) or len(counts) != 2:
            raise ArchitectureRecordError(
                f'must be [in channels, out channels], got {counts!r}', name,
                'channels')
        current = (pruner.get_in_channels(module),
                   pruner.get_out_channels(module))
        for side, value, cur in zip(('in', 'out'), counts, current):
            _count(value, cur, name, f'channels.{side}')
        clone = weightless(module)
        reshape_layer(clone, pruner, *counts)
        got = (pruner.get_in_channels(clone), pruner.get_out_channels(clone))
        if got != tuple(counts):
            raise ArchitectureRecordError(
                f'{list(counts)}: a {type(module).__name__} cut to it has '
                f'{list(got)} (one count for in and out?)', name, 'channels')
        _fits_weights(clone, weights.get(name, {}), name, 'channels')
    for name, module in modules.items():  # layers the record leaves whole
        if name not in channels and layer_pruner(module) is not None:
            _fits_weights(module, weights.get(name, {}), name, 'channels')


def _check_attributes(modules, attributes) -> None:
    for name, found in attributes.items():
        module = _module(modules, name, 'attributes')
        allowed = channel_attributes(module)
        for attr, value in _mapping(found, 'attributes', name).items():
            field = f'attributes.{attr}'
            if attr not in allowed:
                raise ArchitectureRecordError(
                    'not a channel-count attribute of this '
                    f'{type(module).__name__} (it has: {sorted(allowed)})',
                    name, field)
            current = _counts(allowed[attr])
            if _is_int(allowed[attr]):
                _count(value, current[0], name, field)
                continue
            if not isinstance(value, (list, tuple)) or \
                    len(value) != len(current):
                raise ArchitectureRecordError(
                    f'{value!r}: must be a list of {len(current)} counts',
                    name, field)
            for i, (v, cur) in enumerate(zip(value, current)):
                _count(v, cur, name, f'{field}[{i}]')


def _check_scales(modules, scales, weights) -> None:
    for name, width in scales.items():
        module = _module(modules, name, 'scales')
        dims = _scale_dims(module)
        if dims is None:
            raise ArchitectureRecordError(
                f'a {type(module).__name__} in this model, not a module of '
                'per-channel scales', name, 'scales')
        pruner = ChannelScalePruner(dims)
        current = pruner.get_out_channels(module)
        _count(width, current, name, 'scales')
        clone = weightless(module)
        if width < current:
            pruner.prune_out_channels(clone, range(width, current))
        _fits_weights(clone, weights.get(name, {}), name, 'scales')


def check_record(model: nn.Module, record,
                 weights: Optional[dict] = None) -> None:
    """Raise :class:`ArchitectureRecordError` unless ``model`` may obey all
    of ``record``; ``weights`` (the checkpoint's state dict) must then fit.
    The model is not changed."""
    record = _mapping(record, 'architecture')
    unknown = sorted(set(record) - set(RECORD_KEYS))
    if unknown:
        raise ArchitectureRecordError(
            f'unknown keys {unknown}; a record has {list(RECORD_KEYS)}',
            field='architecture')
    weights = _by_module(weights)
    modules = _plan_removals(model, record.get('removed', []))
    _check_channels(modules, _mapping(record.get('channels', {}), 'channels'),
                    weights)
    _check_attributes(modules,
                      _mapping(record.get('attributes', {}), 'attributes'))
    _check_scales(modules, _mapping(record.get('scales', {}), 'scales'),
                  weights)


# --- the pruning hook's state ------------------------------------------


def _real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(
        value, bool) and math.isfinite(value)


_STATE_TYPES = {
    'steps_done': (lambda v: _is_int(v) and v >= 0, 'an integer >= 0'),
    'finished': (lambda v: isinstance(v, bool), 'True or False'),
    'original_flops': (lambda v: v is None or _real(v) and v > 0,
                       'a number > 0 or None'),
    'original_params': (lambda v: v is None or _is_int(v) and v >= 0,
                        'an integer >= 0 or None'),
    'flops_ratio': (lambda v: _real(v) and v >= 0, 'a number >= 0'),
    'original_latency': (lambda v: v is None or _real(v) and v > 0,
                         'a number > 0 or None'),
    'latency_ratio': (lambda v: _real(v) and v >= 0, 'a number >= 0'),
    'original': (lambda v: isinstance(v, dict) and all(
        isinstance(k, str) and _is_int(c) and c >= 1 for k, c in v.items()),
                 'a mapping of layer names to channel counts >= 1'),
    'criterion': (lambda v: isinstance(v, dict), 'a mapping'),
}


def check_pruning_state(state, known: Iterable[str],
                        per_channel: Iterable[str] = ()) -> None:
    """Raise :class:`ArchitectureRecordError` unless ``state`` (a
    checkpoint's ``pruning`` entry) has only ``known`` keys, the types the
    hook saves, and tensors per layer under ``per_channel`` keys."""
    if state is None:
        return
    state = _mapping(state, 'pruning')
    unknown = sorted(set(state) - set(known))
    if unknown:
        raise ArchitectureRecordError(f'unknown keys {unknown}',
                                      field='pruning')
    for key, value in state.items():
        if key in per_channel:
            for layer, v in _mapping(value, f'pruning.{key}').items():
                if not torch.is_tensor(v) or v.dim() != 1:
                    raise ArchitectureRecordError(
                        f'must be a 1-d tensor per layer, got {v!r}'[:200],
                        layer, f'pruning.{key}')
        elif key in _STATE_TYPES:
            ok, what = _STATE_TYPES[key]
            if not ok(value):
                raise ArchitectureRecordError(
                    f'must be {what}, got {value!r}'[:200],
                    field=f'pruning.{key}')


def check_original_widths(state, widths: Dict[str, int]) -> None:
    """``pruning.original`` (each group's channels before any pruning)
    against ``widths``, the output channels of the model as its config
    builds it: a layer of it, and no wider."""
    original = state.get('original') if isinstance(state, dict) else None
    if not isinstance(original, dict):
        return
    for layer, count in original.items():
        if layer not in widths:
            raise ArchitectureRecordError(
                'no prunable layer of this model has this name', layer,
                'pruning.original')
        _count(count, widths[layer], layer, 'pruning.original')

