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


# --- what a record may remove ---------------------------------------------

KINDS = ('block', 'branch')
_STAGES = (nn.Sequential, ) + CONTAINERS
_BRANCH_LAYERS = (nn.modules.conv._ConvNd, nn.Linear)


def _subtree(modules: Dict[str, nn.Module], name: str) -> List[str]:
    return [n for n in modules if n == name or n.startswith(name + '.')]


def _child_or_none(module: nn.Module, attr) -> bool:
    """``attr`` names a child module of ``module`` or an attribute that is
    ``None`` (a block without a projection)."""
    return isinstance(attr, str) and (attr in module._modules or (
        attr in vars(module) and vars(module)[attr] is None))


def removal_problem(modules: Dict[str, nn.Module], kind: str, name: str,
                    shortcut=None, activation=None) -> Optional[str]:
    """Why ``modules`` (``dict(model.named_modules())``) cannot lose
    structure ``name`` as a record asks, or ``None`` if it can.

    What may be removed: a *block* is a module of a stage (a ``Sequential``,
    ``ModuleList`` or ``ModuleDict``) that is no container itself and has a
    residual branch (a conv or linear layer besides its shortcut); its
    ``shortcut`` and ``activation`` name its children (or attributes that
    are ``None``). A *branch* is one of several modules of a ``ModuleDict``
    or ``ModuleList``.
    """
    if kind not in KINDS:
        return f'kind must be one of {KINDS}, got {kind!r}'
    if not isinstance(name, str) or not name or name not in modules:
        return f'{name!r} is not a module of this model'
    module, parent_name = modules[name], name.rpartition('.')[0]
    parent = modules[parent_name]
    if kind == 'branch':
        if not isinstance(parent, CONTAINERS):
            return (f'its container is a {type(parent).__name__}, not a '
                    'ModuleDict or ModuleList of branches')
        siblings = [n for n in modules if n.rpartition('.')[0] == parent_name]
        if len(siblings) < 2:
            return 'it is the last branch of its container'
        return None
    if isinstance(module, ResidualShortcut):
        return None  # removed already
    if isinstance(module, _STAGES):
        return (f'it is a {type(module).__name__}, a container of modules, '
                'not a residual block')
    if not isinstance(parent, _STAGES):
        return (f'its parent is a {type(parent).__name__}, not a stage of '
                'residual blocks (Sequential, ModuleList, ModuleDict)')
    for what, attr in (('shortcut', shortcut), ('activation', activation)):
        if attr is not None and not _child_or_none(module, attr):
            return f'its {what} {attr!r} is not a child module of it'
    kept = f'{name}.{shortcut}' if shortcut else None
    if not any(
            isinstance(modules[n], _BRANCH_LAYERS)
            for n in _subtree(modules, name)
            if kept is None or not (n == kept or n.startswith(kept + '.'))):
        return 'it has no residual branch (no conv or linear layer besides ' \
            'its shortcut)'
    return None


def after_removal(modules: Dict[str, nn.Module], kind: str, name: str,
                  shortcut=None, activation=None) -> Dict[str, nn.Module]:
    """``modules`` as they are named once the structure is removed (what
    :func:`replace_block` or :func:`remove_branch` would leave), computed
    without touching the model."""
    if kind == 'block':
        if isinstance(modules[name], ResidualShortcut):
            return dict(modules)
        kept = [f'{name}.{a}' for a in (shortcut, activation) if a]
        after = {n: m for n, m in modules.items()
                 if n not in _subtree(modules, name) or any(
                     n == k or n.startswith(k + '.') for k in kept)}
        after[name] = ResidualShortcut(None, None, None, None)
        return after
    parent_name, _, child = name.rpartition('.')
    gone = set(_subtree(modules, name))
    after = {}
    for n, m in modules.items():
        if n in gone:
            continue
        if isinstance(modules[parent_name], nn.ModuleList) and \
                n.startswith(parent_name + '.'):
            index, _, rest = n[len(parent_name) + 1:].partition('.')
            if int(index) > int(child):  # a ModuleList renumbers the rest
                n = '.'.join(
                    p for p in (parent_name, str(int(index) - 1), rest) if p)
        after[n] = m
    return after


def repeat_removals(model: nn.Module, records: List[Dict]) -> List[str]:
    """Make the removals of ``records`` in a freshly built ``model``; those
    already made are skipped. Returns the names of the removed structures.

    Raises ``ValueError`` naming the structure when the record asks for
    what :func:`removal_problem` refuses (records from checkpoints are
    checked as a whole before, :mod:`.record_schema`).
    """
    done = {(r['kind'], r['name']) for r in removed_structures(model)}
    changed = []
    for record in records:
        kind, name = record.get('kind'), record.get('name')
        if (kind, name) in done:
            continue
        problem = removal_problem(
            dict(model.named_modules()), kind, name, record.get('shortcut'),
            record.get('activation'))
        if problem:
            raise ValueError(f'cannot remove {kind} {name!r}: {problem}')
        if kind == 'block':
            replace_block(model, name, record.get('shortcut'),
                          record.get('activation'))
        elif kind == 'branch':
            remove_branch(model, name)
        else:
            raise ValueError(f'unknown removed structure {record!r}')
        changed.append(name)
    return changed
