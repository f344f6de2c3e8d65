"""Structures removed whole: residual blocks and branches of a concat.

Channel pruning only narrows layers. Methods that prune structures (GAL)
also delete modules: a residual block becomes its shortcut (the projection
of a downsampling block stays), a branch of an inception module leaves its
container, the concat then holding the other branches only (the layers
reading the concat lose that branch's channels by channel surgery first).

Each removal is remembered on the model it was made in, as plain data, so
that :mod:`.architecture` records it in checkpoints and repeats it on a
freshly built model::

    {'kind': 'block', 'name': 'backbone.layer1.2',
     'shortcut': 'downsample' or None, 'activation': 'relu' or None}
    {'kind': 'branch', 'name': 'backbone.inception_a3.branches.b5x5'}
"""
from typing import Dict, List, Optional

import torch
import torch.nn as nn

# attribute of the root model holding its removals, in the order made
_REMOVED = '_prunedet_removed_structures'
CONTAINERS = (nn.ModuleDict, nn.ModuleList)


class ResidualShortcut(nn.Module):
    """What a residual block computes once its residual branch is gone:
    ``activation(shortcut(x))``, or ``activation(x)`` without a projection.

    The kept modules keep their attribute names, so the block's shortcut
    weights load under the names they had (``layer2.0.downsample.0...``).
    """

    def __init__(self, shortcut_name: Optional[str],
                 shortcut: Optional[nn.Module],
                 activation_name: Optional[str],
                 activation: Optional[nn.Module]):
        super().__init__()
        self.shortcut_name = shortcut_name if shortcut is not None else None
        self.activation_name = activation_name \
            if activation is not None else None
        if self.shortcut_name:
            self.add_module(shortcut_name, shortcut)
        if self.activation_name:
            # without a projection its input is the previous block's
            # output, which autograd keeps: never overwrite it
            if hasattr(activation, 'inplace'):
                activation.inplace = False
            self.add_module(activation_name, activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.shortcut_name:
            x = getattr(self, self.shortcut_name)(x)
        if self.activation_name:
            x = getattr(self, self.activation_name)(x)
        return x


def _parent(model: nn.Module, name: str):
    modules = dict(model.named_modules())
    if name not in modules or not name:
        raise KeyError(f'{name!r} is not a module of {type(model).__name__}')
    parent, _, child = name.rpartition('.')
    return modules[parent], child


def _optional_child(module: nn.Module, attr: Optional[str], what: str,
                    name: str) -> Optional[nn.Module]:
    if not attr:
        return None
    child = getattr(module, attr, None)
    if child is not None and not isinstance(child, nn.Module):
        raise ValueError(f'{name}.{attr} is not a module; cannot keep it as '
                         f'the {what} of the removed block')
    return child


def replace_block(model: nn.Module, name: str, shortcut: Optional[str],
                  activation: Optional[str]) -> ResidualShortcut:
    """Replace residual block ``name`` of ``model`` by its shortcut.

    ``shortcut`` names the block's projection attribute (``None`` or an
    attribute that is ``None``: identity), ``activation`` the activation
    applied after the addition (``None``: none).
    """
    parent, child = _parent(model, name)
    block = getattr(parent, child)
    if isinstance(block, ResidualShortcut):
        return block
    replacement = ResidualShortcut(
        shortcut, _optional_child(block, shortcut, 'shortcut', name),
        activation, _optional_child(block, activation, 'activation', name))
    if isinstance(parent, CONTAINERS):
        parent[int(child) if isinstance(parent, nn.ModuleList) else
               child] = replacement
    else:
        setattr(parent, child, replacement)
    _remember(model, dict(kind='block', name=name, shortcut=shortcut,
                          activation=activation))
    return replacement


def remove_branch(model: nn.Module, name: str) -> None:
    """Delete branch ``name`` from the ``ModuleDict``/``ModuleList`` that
    holds it (the module concatenating the branches iterates over it)."""
    parent, child = _parent(model, name)
    if not isinstance(parent, CONTAINERS):
        raise ValueError(
            f'{name} is held by a {type(parent).__name__}, not a ModuleDict '
            'or ModuleList that its module iterates over; it cannot be '
            'removed')
    del parent[int(child) if isinstance(parent, nn.ModuleList) else child]
    _remember(model, dict(kind='branch', name=name))


def _remember(model: nn.Module, record: dict) -> None:
    model.__dict__.setdefault(_REMOVED, []).append(record)


def removed_structures(model: nn.Module) -> List[dict]:
    """The removals made in ``model`` (plain data, in order)."""
    return [dict(r) for r in model.__dict__.get(_REMOVED, [])]


def repeat_removals(model: nn.Module, records: List[Dict]) -> List[str]:
    """Make the removals of ``records`` in a freshly built ``model``; those
    already made are skipped. Returns the names of the removed structures.

    Raises ``KeyError``/``ValueError`` naming the structure when the record
    does not describe this model.
    """
    done = {(r['kind'], r['name']) for r in removed_structures(model)}
    changed = []
    for record in records:
        kind, name = record.get('kind'), record.get('name')
        if (kind, name) in done:
            continue
        if kind == 'block':
            replace_block(model, name, record.get('shortcut'),
                          record.get('activation'))
        elif kind == 'branch':
            remove_branch(model, name)
        else:
            raise ValueError(f'unknown removed structure {record!r}')
        changed.append(name)
    return changed
