"""GAL's soft masks: one learnable scale per structure of the student.

A mask multiplies the output of a structure (Lin et al., CVPR 2019, eq. 1):

* ``filter``: every output channel of a layer, one scale each (VGG: after
  each conv -> BN -> ReLU and the classifier's hidden neurons; LeNet-5:
  after each conv/fc and its activation);
* ``block``: the residual branch of a residual block, one scalar, applied to
  the output of its last norm layer, before the shortcut is added;
* ``branch``: one branch of an inception module, one scalar, before the
  concat.

Masks attach to an unchanged model by configuration: each structure entry
names modules (exact names or patterns whose ``*`` stands for one dotted
component, e.g. ``backbone.layer*.*``) or module types, and the
mask is a forward hook on the module whose output it scales. A structure
goes when its mask is exactly zero (:mod:`prunedet.gal.removal`).
"""
import fnmatch
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn as nn

from prunedet.pruning.structures import CONTAINERS
from prunedet.utils.modules import last_layer_up_to

KINDS = ('filter', 'block', 'branch')
KEYS = {'kind', 'names', 'types', 'within'}
BLOCK_KEYS = {'residual', 'shortcut', 'activation'}
INITS = ('normal', 'uniform', 'ones')
PRUNABLE = (nn.Conv2d, nn.Linear)
_GLOB = set('*?[')


def producer_of(model: nn.Module, name: str) -> Optional[nn.Module]:
    """The conv/linear layer whose channels module ``name`` outputs (its
    own last one, or the one before an activation or pooling module)."""
    return last_layer_up_to(model, name, PRUNABLE)


def channels_of(layer: nn.Module) -> int:
    return layer.out_channels if isinstance(layer, nn.Conv2d) else \
        layer.out_features


class StructureMask(nn.Module):
    """The scales of one structure, multiplying ``target``'s output along
    dim 1 (one per channel for a filter mask, one scalar otherwise)."""

    def __init__(self, kind: str, target: str, size: int, init: str,
                 **details):
        super().__init__()
        self.kind = kind
        self.target = target
        self.details = details
        weight = torch.empty(size)
        if init == 'normal':  # the public code's N(0, 1)
            weight.normal_()
        elif init == 'uniform':
            weight.uniform_()
        else:
            weight.fill_(1.)
        self.weight = nn.Parameter(weight)

    @property
    def hook_target(self) -> str:
        """The module whose output is scaled (a block's residual norm)."""
        return self.details.get('residual', self.target)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight.view(1, -1, *([1] * (x.dim() - 2)))

    def scale_output(self, module, args, output):
        """Forward hook; a bound method, so a deep copy of the model
        scales with the copy's mask."""
        return self(output)

    def extra_repr(self) -> str:
        return f'{self.kind} {self.target}: {self.weight.numel()}'


def _matches(name: str, pattern: str) -> bool:
    """``fnmatch`` per dotted component: ``*`` never spans a dot."""
    parts, wanted = name.split('.'), pattern.split('.')
    return len(parts) == len(wanted) and all(
        fnmatch.fnmatchcase(p, w) for p, w in zip(parts, wanted))


def _selected(modules: Dict[str, nn.Module], spec: dict) -> List[str]:
    """Names of the modules a structure entry selects, in model order."""
    names, types = spec.get('names', []), spec.get('types', [])
    within = spec.get('within', '')
    if isinstance(names, str) or isinstance(types, str):
        raise ValueError(f'GAL structure {spec!r}: names and types are '
                         'lists of strings')
    exact = [n for n in names if not _GLOB & set(n)]
    missing = [n for n in exact if n not in modules or not n]
    if missing:
        raise ValueError(f'GAL structure {spec["kind"]!r} names modules '
                         f'that do not exist in the student: {missing}')
    chosen = []
    for pattern in (n for n in names if _GLOB & set(n)):
        found = [n for n in modules if _matches(n, pattern)]
        if not found:
            raise ValueError(f'GAL structure {spec["kind"]!r}: pattern '
                             f'{pattern!r} matches no module of the student')
        chosen += found
    for type_name in types:
        found = [
            n for n, m in modules.items() if type(m).__name__ == type_name
            and (not within or n == within or n.startswith(within + '.'))
        ]
        if not found:
            raise ValueError(f'GAL structure {spec["kind"]!r}: no module of '
                             f'type {type_name!r} in the student'
                             f'{" under " + within if within else ""}')
        chosen += found
    chosen += exact
    if not chosen:
        raise ValueError(f'GAL structure {spec!r} selects nothing: give '
                         'names and/or types')
    order = {n: i for i, n in enumerate(modules)}
    return sorted(set(chosen), key=order.__getitem__)


def _block_details(modules: Dict[str, nn.Module], name: str, spec: dict):
    block = modules[name]
    residual = spec.get('residual', 'bn2')
    layer = getattr(block, residual, None)
    affine = isinstance(layer, PRUNABLE) or (
        isinstance(layer, nn.modules.batchnorm._NormBase) and layer.affine)
    if not affine:
        raise ValueError(
            f'GAL block {name}: its residual output {residual!r} is '
            f'{type(layer).__name__ if layer is not None else "missing"}; '
            'the block mask scales the last norm (with affine terms), conv '
            'or linear layer of the residual branch (set residual=...)')
    details = dict(residual=f'{name}.{residual}')
    for key, default in (('shortcut', 'downsample'), ('activation', 'relu')):
        attr = spec.get(key, default)
        if attr and not hasattr(block, attr):
            raise ValueError(f'GAL block {name} has no {key} {attr!r} (set '
                             f'{key}=None if it has none)')
        details[key] = attr
    return details


class SoftMasks(nn.ModuleDict):
    """The masks of a student, built from structure entries::

        dict(kind='filter', names=['backbone.features.*'], types=[...],
             within='backbone')
        dict(kind='block', types=['BasicBlock'], residual='bn2',
             shortcut='downsample', activation='relu')
        dict(kind='branch', names=['backbone.inception_*.branches.*'])

    Fails at once, naming it, on a structure that does not exist or cannot
    be masked and removed.
    """

    def __init__(self, student: nn.Module, structures: Sequence[dict],
                 init: str = 'normal'):
        super().__init__()
        if init not in INITS:
            raise ValueError(f'GAL: mask_init must be one of {INITS}, got '
                             f'{init!r}')
        if isinstance(structures, dict) or not structures:
            raise ValueError('GAL: structures must be a non-empty list of '
                             'dicts (kind=filter/block/branch, names/types)')
        modules = dict(student.named_modules())
        for spec in structures:
            if spec.get('kind') not in KINDS:
                raise ValueError(f'GAL structure {spec!r}: kind must be one '
                                 f'of {KINDS}')
            unknown = set(spec) - KEYS - (
                BLOCK_KEYS if spec['kind'] == 'block' else set())
            if unknown:
                raise ValueError(f'GAL structure {spec!r}: unknown keys '
                                 f'{sorted(unknown)}')
            for name in _selected(modules, spec):
                self._add(modules, name, dict(spec), init)
        self.register_buffer('steps', torch.zeros((), dtype=torch.long))

    def _add(self, modules, name: str, spec: dict, init: str) -> None:
        kind = spec['kind']
        key = name.replace('.', '_')
        if key in self:
            raise ValueError(f'GAL: {name} is selected twice as a structure')
        details = {}
        if kind == 'filter':
            layer = producer_of(modules[''], name)
            if layer is None:
                raise ValueError(f'GAL filter mask at {name}: no conv or '
                                 'linear layer produces its channels')
            size = channels_of(layer)
        elif kind == 'block':
            details, size = _block_details(modules, name, spec), 1
        else:
            parent = modules[name.rpartition('.')[0]]
            if not isinstance(parent, CONTAINERS):
                raise ValueError(
                    f'GAL branch {name}: it must be held by a ModuleDict or '
                    'ModuleList its module concatenates over (to be '
                    f'removable), not by a {type(parent).__name__}')
            size = 1
        self[key] = StructureMask(kind, name, size, init, **details)

    def attach(self, student: nn.Module) -> None:
        """Scale the student's structures from now on."""
        self.detach(student)
        modules = dict(student.named_modules())
        for mask in self.values():
            modules[mask.hook_target].register_forward_hook(
                mask.scale_output)

    def detach(self, student: nn.Module) -> None:
        """Stop scaling. The hooks are found on the modules rather than
        kept as handles: a handle of a deep-copied model would still point
        at the original's hooks."""
        modules = dict(student.named_modules())
        for mask in self.values():
            hooks = modules[mask.hook_target]._forward_hooks
            for key in [k for k, fn in hooks.items()
                        if getattr(fn, '__self__', None) is mask]:
                del hooks[key]

    def of_kind(self, kind: str) -> List[StructureMask]:
        return [m for m in self.values() if m.kind == kind]

    def kinds(self) -> List[str]:
        return [k for k in KINDS if self.of_kind(k)]

    def zero_counts(self) -> Dict[str, int]:
        """Masks exactly at zero per kind (the structures that would go)."""
        return {
            kind: sum(int((m.weight == 0).sum()) for m in self.of_kind(kind))
            for kind in self.kinds()
        }

    def sizes(self) -> Dict[str, int]:
        return {
            kind: sum(m.weight.numel() for m in self.of_kind(kind))
            for kind in self.kinds()
        }

    def l1(self) -> torch.Tensor:
        return sum(m.weight.abs().sum() for m in self.values())
