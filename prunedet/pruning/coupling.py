"""Channel coupling that Torch-Pruning's graph does not get right by itself.

Everything here goes through Torch-Pruning's own extension points: a custom
pruner for modules holding bare per-channel parameters (``customized_pruners``)
and index mappings on the graph's dependencies (``Dependency.index_mapping``,
the mechanism Torch-Pruning uses for its own concat/split handling).

* **Per-channel scales** (SSD's ``L2Norm``, layer scales): a module that is
  unknown to Torch-Pruning and holds only 1-D-like parameters of its channel
  count gets :class:`ChannelScalePruner`, so it is cut with its channels.
* **Concat sizes** come from the traced ``torch.cat`` calls, not from
  Torch-Pruning's recursive guesses.
* **Split/chunk/slice** along channels into equal parts (``x.chunk(2, 1)``,
  ``x[:, :c // 2]``): the parts are cut from the tensor as it is at run time,
  so each part must lose the same channels; each reader reads the parts it
  really reads (autograd's output numbers). Unequal splits, whose sizes are
  constants in the code, are opaque.
* **Channel shuffle** (``view(n, g, c/g, h, w).transpose(1, 2).view(n, c,
  h, w)``, ShuffleNet): a permutation whose row ``j`` (input channels
  ``j, j + c/g, ...``) must go as a whole for the shuffle of the pruned tensor
  to equal the pruned shuffle; the mapping couples them.
* Root channels that such couplings tie together form *orbits*
  (:class:`OrbitLog`): the units a group is pruned in.
* Layers that cannot lose arbitrary channels without changing what the kept
  ones compute (grouped convs, group/layer norms, attention) and ops whose
  channel layout is unknown make their groups unprunable (:func:`why_not`).
"""
from numbers import Number
from typing import Dict, List, Optional, Sequence, Tuple

import torch.nn as nn
import torch_pruning as tp
from torch_pruning import ops
from torch_pruning._helpers import GroupItem, _HybridIndex
from torch_pruning.dependency import index_mapping
from torch_pruning.dependency.dependency import Dependency
from torch_pruning.dependency.group import Group
from torch_pruning.dependency.node import Node
from torch_pruning.pruner import function

from .tracing import CatRecord

# module type -> {parameter name: channel dim}
_SCALE_DIMS: Dict[type, Dict[str, int]] = {}


class ChannelScalePruner(tp.pruner.BasePruningFunc):
    """Cuts a module's bare per-channel parameters along their channel dim.

    Its output channels are its input channels, as for a norm layer, so
    pruning either side prunes both (``prune_in_channels`` is the same)."""

    def __init__(self, dims: Dict[str, int]):
        super().__init__()
        self.dims = dict(dims)

    def prune_out_channels(self, layer: nn.Module, idxs: Sequence[int]):
        drop = set(int(i) for i in idxs)
        keep = [i for i in range(self.get_out_channels(layer)) if i not in drop]
        for name, dim in self.dims.items():
            setattr(layer, name,
                    self._prune_parameter_and_grad(
                        getattr(layer, name), keep, dim))
        return layer

    prune_in_channels = prune_out_channels

    def get_out_channels(self, layer: nn.Module) -> int:
        name, dim = next(iter(self.dims.items()))
        return getattr(layer, name).shape[dim]

    get_in_channels = get_out_channels


def _scale_dims(module: nn.Module) -> Optional[Dict[str, int]]:
    """``{param: channel dim}`` if ``module`` only holds per-channel vectors
    (and scalars) of one size, and has no layers of its own."""
    if ops.module2type(module) != ops.OPTYPE.ELEMENTWISE or any(
            True for c in module.children() for _ in c.parameters()):
        return None
    dims, sizes = {}, set()
    for name, p in module.named_parameters(recurse=False):
        wide = [d for d, s in enumerate(p.shape) if s > 1]
        if not wide:
            continue  # a scalar broadcasts over any channels
        if len(wide) > 1:
            return None
        dims[name] = wide[0]
        sizes.add(p.shape[wide[0]])
    return dims if dims and len(sizes) == 1 else None


def scale_pruners(model: nn.Module) -> Dict[type, ChannelScalePruner]:
    """Custom pruners for the per-channel-scale module types of ``model``.

    Torch-Pruning keys custom pruners by type, so a type is registered only
    if all its instances have the same layout."""
    found: Dict[type, Optional[Dict[str, int]]] = {}
    for module in model.modules():
        if next(module.parameters(recurse=False), None) is None:
            continue
        dims = _scale_dims(module)
        kind = type(module)
        if kind in found and found[kind] != dims:
            dims = None
        found[kind] = dims
    pruners = {}
    for kind, dims in found.items():
        if dims:
            _SCALE_DIMS[kind] = dims
            pruners[kind] = ChannelScalePruner(dims)
    return pruners


def scale_dims(module: nn.Module) -> Optional[Dict[str, int]]:
    """The channel dim of each parameter of a per-channel-scale module."""
    return _SCALE_DIMS.get(type(module))


# --- index mappings ----------------------------------------------------


_UNSEEN = object()
_TWO_SIDED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
# nodes whose edges' index mappings Torch-Pruning's update_index_mapping sets
_REMAPPED = frozenset((ops.OPTYPE.CONCAT, ops.OPTYPE.SPLIT, ops.OPTYPE.RESHAPE,
                       ops.OPTYPE.UNBIND, ops.OPTYPE.EXPAND,
                       ops.OPTYPE.SLICE))


class OrbitLog:
    """While active, records which root channels reach the same channel of
    a node during a group search. Root channels that meet are one unit (an
    *orbit*): they can only be removed together."""
    active: Optional['OrbitLog'] = None

    def __init__(self):
        self.ties: List[Tuple[int, int]] = []

    def __enter__(self):
        OrbitLog.active = self
        return self

    def __exit__(self, *exc):
        OrbitLog.active = None

    def tie(self, a: int, b: int) -> None:
        """Root channels ``a`` and ``b`` reached the same channel."""
        self.ties.append((a, b))

    def orbits(self, width: int) -> Optional[List[List[int]]]:
        """The root channels grouped into orbits (``None``: each its own)."""
        if not self.ties:  # the usual case: no union-find over the width
            return None
        parent = list(range(width))

        def find(a):
            while parent[a] != a:
                parent[a] = parent[parent[a]]
                a = parent[a]
            return a

        for a, b in self.ties:
            if a < width and b < width:
                parent[find(b)] = find(a)
        orbits: Dict[int, List[int]] = {}
        for r in range(width):
            orbits.setdefault(find(r), []).append(r)
        if len(orbits) == width:
            return None
        return sorted(orbits.values())


class DependencyGraph(tp.DependencyGraph):
    """Torch-Pruning's graph whose group search propagates each channel
    once.

    Torch-Pruning's own search re-expands a node for every distinct list of
    indices that reaches it; where couplings pair channels (shuffles, equal
    parts) the lists multiply and a ShuffleNet stage takes hours. This one
    keeps, per (node, pruning function), the channels already reached and
    passes on only new ones: the same group (the same fixed point, merged
    the same way), in time proportional to its size.
    """

    def __init__(self, cats: Optional[Dict[object, CatRecord]] = None):
        super().__init__()
        self.cats = {} if cats is None else cats  # filled while tracing
        # What only a cut changes is kept until the next one: the index
        # mappings Torch-Pruning re-derives from the channel counts before
        # a group search, and the channel counts of nodes. ``version``
        # counts the cuts (:meth:`invalidate`); each (node, side) cut
        # remembers the last version that cut it (:meth:`unchanged_since`).
        self.version = 0
        self._mapped_at: Optional[int] = None
        self._widths: Dict[tuple, Optional[int]] = {}
        self._widths_at = 0
        self._cut_at: Dict[tuple, int] = {}
        self._all_cut_at = 0

    def invalidate(self, cut: Optional[Group] = None) -> None:
        """The model lost channels: what was derived from them is stale.
        ``cut``: the group that was cut (what it touched); ``None``: any
        layer may have changed. :func:`~.surgery.remove_channels` calls it
        after every cut; anything else that changes a layer of the graph
        must too."""
        self.version += 1
        if cut is None:
            self._all_cut_at = self.version
            return
        for item in cut:
            self._cut_at[self.cut_key(item)] = self.version

    def cut_key(self, item: GroupItem) -> tuple:
        """What cutting a group item changes: a conv's or linear layer's
        input and output channels are separate axes (a cut of one leaves
        the other's indices as they were); any other node (a norm, a
        per-channel scale, a depthwise conv, an add, a concat, a reshape)
        is one."""
        node = item.dep.target
        module = node.module
        if isinstance(module, _TWO_SIDED) and \
                getattr(module, 'groups', 1) == 1:
            return node, self.is_out_channel_pruning_fn(item.dep.handler)
        return node, None

    def unchanged_since(self, version: int, keys) -> bool:
        """Whether no cut after graph version ``version`` touched any of
        ``keys`` (:meth:`cut_key` of group items)."""
        if self._all_cut_at > version:
            return False
        cut_at = self._cut_at
        return all(cut_at.get(k, -1) <= version for k in keys)

    def widths(self) -> Dict[tuple, Optional[int]]:
        """``(node, output_nr) -> channels`` known since the last cut
        (:func:`node_channels`)."""
        if self._widths_at != self.version:
            self._widths, self._widths_at = {}, self.version
        return self._widths

    def update_index_mapping(self) -> None:
        """Torch-Pruning's re-derivation of the concat, split and reshape
        index mappings from the channel counts, once after each cut (it
        gives the same mappings until the counts change)."""
        if self._mapped_at != self.version:
            index_mapping.update_index_mapping(self)
            self._mapped_at = self.version

    def _build_dependency(self, module2node):
        """Give each concat the sizes it was traced with before
        Torch-Pruning infers them: its recursive guess is ``None`` for
        inputs it cannot follow (Conformer's token concat), and the
        index mappings it then builds fail on ``None + int``."""
        super()._build_dependency(module2node)
        for node in module2node.values():
            record = self.cats.get(node.grad_fn)
            if node.type != ops.OPTYPE.CONCAT or record is None \
                    or record.dim != 1:
                continue  # along other dims it does not map channels
            sizes = [s for s, t in zip(record.sizes, record.traced) if t]
            if len(sizes) == len(node.inputs):  # those in the graph
                node.module.concat_sizes = sizes

    def get_pruning_group(self, module: nn.Module, pruning_fn,
                          idxs: Sequence[int]) -> Group:
        if module not in self.module2node:
            raise ValueError(f'Module {module} is not in the dependency '
                             'graph.')
        if isinstance(module, ops.TORCH_CONV) and \
                module.groups == module.out_channels and \
                module.out_channels > 1:
            pruning_fn = function.prune_depthwise_conv_out_channels
        if isinstance(idxs, Number):
            idxs = [idxs]
        root = self.module2node[module]
        log = OrbitLog.active
        reached: Dict[tuple, tuple] = {}  # (node, fn) -> (dep, {idx: root})
        stack = []

        def add(dep, items):
            key = (dep.target, dep.handler)
            known = reached.setdefault(key, (dep, {}))[1]
            # the usual cases at C speed: reached first, or again with
            # nothing new (the loop below decides where an index repeats)
            pairs = {i.idx: i.root_idx for i in items}
            if len(pairs) == len(items):
                if not known:
                    known.update(pairs)
                    stack.append((dep, list(items)))
                    return
                if pairs.items() <= known.items():
                    return
            new = []
            for i in items:
                first = known.get(i.idx, _UNSEEN)
                if first is _UNSEEN:
                    known[i.idx] = i.root_idx
                    new.append(i)
                elif i.root_idx is None or first == i.root_idx:
                    continue
                elif first is None:
                    known[i.idx] = i.root_idx
                elif log is not None:  # two root channels meet
                    log.tie(first, i.root_idx)
            if new:
                stack.append((dep, new))

        idxs = list(map(int, idxs))
        add(Dependency(pruning_fn, pruning_fn, source=root, target=root),
            list(map(_HybridIndex._make, zip(idxs, idxs))))
        # Torch-Pruning re-derives the mappings of the edges of these nodes
        # from the channel counts before every search; here only once after
        # a cut, and only when a search reaches such an edge (most groups
        # never pass a concat, split or reshape)
        fresh = self._mapped_at == self.version
        while stack:
            dep, items = stack.pop()
            for new_dep in dep.target.dependencies:
                if not new_dep.is_triggered_by(dep.handler):
                    continue
                if not fresh and (new_dep.source.type in _REMAPPED
                                  or new_dep.target.type in _REMAPPED):
                    self.update_index_mapping()
                    fresh = True
                mapped = items
                for mapping in new_dep.index_mapping:
                    if mapping is not None:
                        mapped = mapping(mapped)
                if mapped:
                    add(new_dep, mapped)
        group = Group()
        group._DG = self
        for dep, known in reached.values():
            target = dep.target.module
            if isinstance(target, nn.Parameter) and any(
                    target is p for p in self.ignored_params):
                continue
            plain = sorted(known) if dep.target is not root else \
                list(known)
            item = GroupItem(dep, plain)
            item.root_idxs = list(map(known.__getitem__, plain))
            group.items.append(item)
        return group


def subgroup(full: Group, channels: Sequence[int]) -> Optional[Group]:
    """The group that a search from root ``channels`` finds, taken from
    ``full``, the group of all the root's channels (``None`` if it cannot
    be).

    The search maps each channel on its own, so a channel reaches what it
    reaches whichever others go with it: an item's indices are those whose
    root channel is chosen. Where root channels meet (orbits) the full
    group records the first; the caller chooses whole orbits. An index
    whose root was lost on the way (``None``) cannot be placed: search."""
    chosen = set(int(c) for c in channels)
    group = Group()
    group._DG = full._DG
    for item in full:
        roots = item.root_idxs
        if roots is None or None in roots:
            return None
        pairs = [(i, r) for i, r in zip(item.idxs, roots) if r in chosen]
        if pairs:
            idxs, sub_roots = zip(*pairs)
            sub = GroupItem(item.dep, list(idxs))
            sub.root_idxs = list(sub_roots)
            group.items.append(sub)
    return group


class _Chunks:
    """Channels across ``chunk``/``split`` into equal parts or a slice of
    one part (``x[:, :c // 2]``): the parts are taken from the tensor as it
    is at run time, so a pruned tensor is cut where it must be only if every
    part lost as many channels. Channel ``i`` of one part therefore goes
    with channel ``i`` of every other part.

    Forward (source -> reader of ``chunks``): the position in the part;
    backward: that position in every part.
    """

    def __init__(self, dg, source: Node, parts: int, chunks: List[int],
                 reverse: bool):
        self.dg = dg
        self.source = source
        self.parts = parts
        self.chunks = chunks
        self.reverse = reverse

    def __call__(self, idxs):
        size = node_channels(self.dg, self.source) // self.parts
        out = []
        for i in idxs:
            if self.reverse:
                if i.idx < size:
                    out += [_HybridIndex(m * size + i.idx, i.root_idx)
                            for m in range(self.parts)]
            else:
                out += [_HybridIndex(i.idx - m * size, i.root_idx)
                        for m in self.chunks
                        if m * size <= i.idx < (m + 1) * size]
        return out


class _Shuffle:
    """Input channel -> the shuffled positions of its whole row (and back).

    ``out[j * g + k] = in[k * c / g + j]``: input row ``j`` is the ``g``
    channels ``j + k * c / g``; they land on outputs ``j * g .. j * g + g``.
    The shuffle of a pruned tensor is the pruned shuffle only if rows go
    whole.
    """

    def __init__(self, dg, source: Node, groups: int, reverse: bool):
        self.dg = dg
        self.source = source  # the node whose output is shuffled
        self.groups = groups
        self.reverse = reverse

    def __call__(self, idxs):
        g = self.groups
        per_group = node_channels(self.dg, self.source) // g
        out = set()
        for i in idxs:
            row = i.idx // g if self.reverse else i.idx % per_group
            for k in range(g):
                out.add(_HybridIndex(
                    k * per_group + row if self.reverse else row * g + k,
                    i.root_idx))
        return sorted(out)


class _CatPart:
    """Input ``part`` of a concat: its channel ``i`` is the concat's
    ``offset + i`` (``reverse``: back). The offset is summed from the
    concat's part sizes when used: Torch-Pruning's concat pruner keeps
    ``concat_sizes`` up to date at every prune, but not ``offsets``, so
    offsets stored at build time are wrong from the second prune on."""

    def __init__(self, op, part: int, reverse: bool):
        self.op = op
        self.part = part
        self.reverse = reverse

    def __call__(self, idxs):
        sizes = self.op.concat_sizes
        lo = sum(sizes[:self.part])
        hi = lo + sizes[self.part]
        if self.reverse:
            return [_HybridIndex(i.idx - lo, i.root_idx) for i in idxs
                    if lo <= i.idx < hi]
        return [_HybridIndex(i.idx + lo, i.root_idx) for i in idxs]


def node_channels(dg, node: Node, output_nr: int = 0) -> Optional[int]:
    """Channels of a node's output as the model is now.

    Counts are kept in the graph until its next cut (``dg.widths()``), but
    only those that no cycle (recurrent use) reached: a count that read a
    node still being counted as unknown depends on where the count began,
    so it is only kept for this call."""
    known = dg.widths() if hasattr(dg, 'widths') else {}
    seen = {}  # this call's: (n, nr) -> (count, whether it can be kept)

    def count(n: Node, nr: int) -> Tuple[Optional[int], bool]:
        key = (n, nr)
        if key in known:
            return known[key], True
        if key in seen:
            return seen[key]
        seen[key] = (None, False)  # cycles count as unknown
        keep = True
        if n.type == ops.OPTYPE.SPLIT and n.module.split_sizes is not None \
                and nr < len(n.module.split_sizes):
            result = n.module.split_sizes[nr]
        elif getattr(n.module, 'parts', None):  # a part of a slice
            width, keep = count(n.inputs[0], 0)
            result = None if width is None else width // n.module.parts
        elif n.type in (ops.OPTYPE.CONCAT, ops.OPTYPE.SPLIT,
                        ops.OPTYPE.ELEMENTWISE, ops.OPTYPE.RESHAPE,
                        ops.OPTYPE.UNBIND, ops.OPTYPE.EXPAND,
                        ops.OPTYPE.SLICE, ops.OPTYPE.OUTPUT):
            ins = []
            for i in n.inputs:
                width, kept = count(i, 0)
                ins.append(width)
                keep = keep and kept
            if n.type == ops.OPTYPE.CONCAT and n.module.concat_sizes:
                result = sum(n.module.concat_sizes)
            elif n.type == ops.OPTYPE.CONCAT:
                result = None if None in ins else sum(ins)
            else:  # broadcasting: the widest input
                result = max((c for c in ins if c is not None), default=None)
        else:
            result = dg.get_out_channels(n)
        seen[key] = (result, keep)
        if keep:
            known[key] = result
        return result, keep

    return count(node, output_nr)[0]


def _edges(source: Node, target: Node):
    return [d for d in source.dependencies if d.target is target]


# --- resolving the graph's concats, splits and shuffles ----------------


class Coupling:
    """Fixes a built graph's concat, split, slice and shuffle coupling, and
    knows which nodes stay opaque (their groups are not pruned).

    Args:
        dg: the built ``DependencyGraph``.
        cats: the traced concats (:class:`~.tracing.CatRecord` per
            autograd node).
    """

    def __init__(self, dg, cats: Dict[object, CatRecord]):
        self.dg = dg
        self.opaque: Dict[Node, str] = {}
        nodes = list(dg.module2node.values())
        for node in nodes:  # first: every later step counts channels
            if node.type == ops.OPTYPE.CONCAT:
                self._concat(node, cats.get(node.grad_fn))
        for node in nodes:
            if node.type == ops.OPTYPE.SPLIT:
                self._split(node)
            elif node.type == ops.OPTYPE.SLICE:
                self._slice(node)
        self.shuffles = [n for n in nodes if self._shuffle(n)]
        self._invalidate()  # channel counts read before the graph was fixed

    def _invalidate(self) -> None:
        if hasattr(self.dg, 'invalidate'):
            self.dg.invalidate()

    def _concat(self, node: Node, record: Optional[CatRecord]) -> None:
        if record is None:
            self.opaque[node] = 'a concat that was not traced'
        elif record.dim == 1 and record.ndim in (2, 4, 5):
            if not all(record.traced) or \
                    len(record.sizes) != len(node.inputs):
                self.opaque[node] = (
                    'a concat of a tensor without gradient (a constant or '
                    'the input), whose channels the graph cannot place')
            else:
                self._place_parts(node, list(record.sizes))

    @staticmethod
    def _place_parts(node: Node, sizes: List[int]) -> None:
        """Each input's channels at its offset in the concat. Torch-Pruning
        installs these only when its shape inference downstream agrees
        with the sizes, and silently leaves the indices unshifted when it
        does not (after ShuffleNet's shuffle views); so the mappings here
        are the only ones (Torch-Pruning's re-mapping before every group
        search is switched off for this node)."""
        op = node.module
        op.concat_sizes = sizes
        op.offsets = None  # not kept up to date by Torch-Pruning: unused
        node.enable_index_mapping = False
        into, back = set(), set()
        for i, source in enumerate(node.inputs):
            for dep in _edges(source, node):
                if id(dep) not in into:
                    into.add(id(dep))
                    dep.index_mapping[1] = _CatPart(op, i, False)
                    break
            for dep in _edges(node, source):
                if id(dep) not in back:
                    back.add(id(dep))
                    dep.index_mapping[1] = _CatPart(op, i, True)
                    break

    def _split(self, node: Node) -> None:
        fn = node.grad_fn
        shape = getattr(fn, '_saved_self_sym_sizes', None)
        dim = getattr(fn, '_saved_dim', None)
        if shape is None or dim is None or len(node.inputs) != 1:
            self.opaque[node] = 'a split whose sizes were not recorded'
            return
        shape = [int(s) for s in shape]
        dim = dim + len(shape) if dim < 0 else dim
        node.enable_index_mapping = False  # the mappings are set here
        for out in node.outputs:
            for dep in _edges(node, out) + _edges(out, node):
                dep.index_mapping[0] = None
        if dim != 1:  # not along channels: every chunk has them all
            node.module.split_sizes = node.module.offsets = None
            return
        if hasattr(fn, '_saved_split_sizes'):
            sizes = [int(s) for s in fn._saved_split_sizes]
        else:
            step = int(fn._saved_split_size)
            sizes = [min(step, shape[1] - k) for k in range(0, shape[1], step)]
        node.module.split_sizes = sizes
        if len(set(sizes)) != 1:
            self.opaque[node] = (
                f'a split into unequal parts {sizes}, whose sizes are fixed '
                'in the code')
            return
        consumers = []
        for out in dict.fromkeys(node.outputs):
            nexts = getattr(out.grad_fn, 'next_functions', ()) or ()
            chunks = sorted({nr for f, nr in nexts if f is fn})
            if not chunks:
                self.opaque[node] = (
                    f'a split whose readers ({out.name}) could not be told '
                    'apart')
                return
            consumers.append((chunks, out))
        # Torch-Pruning's shape inference reads split_sizes by output order
        consumers.sort(key=lambda c: c[0])
        node.outputs = [out for _, out in consumers]
        source, parts = node.inputs[0], len(sizes)
        for chunks, out in consumers:
            for dep in _edges(node, out):
                dep.index_mapping[0] = _Chunks(self.dg, source, parts,
                                               chunks, False)
            for dep in _edges(out, node):
                # after any concat/reshape mapping on the way back
                dep.index_mapping[2:] = [
                    _Chunks(self.dg, source, parts, chunks, True)]

    def _slice(self, node: Node) -> None:
        """A slice along channels must be a part of equal parts."""
        op = node.module
        if op.dim != 1 or len(node.inputs) != 1:
            return  # along space or time: channels pass whole
        self._invalidate()  # counts change while nodes are being fixed
        source = node.inputs[0]
        width = node_channels(self.dg, source)
        end = min(op.end, width) if width is not None else None
        size = end - op.start if end is not None else 0
        if op.step != 1 or op.start < 0 or size <= 0 or width % size \
                or op.start % size:
            self.opaque[node] = (
                f'a slice [{op.start}:{op.end}] of {width} channels that is '
                'not one of equal parts')
            return
        node.type = ops.OPTYPE.ELEMENTWISE  # the mappings are set here
        parts, chunk = width // size, op.start // size
        op.parts = parts  # its width follows the source's (node_channels)
        for dep in _edges(source, node):
            dep.index_mapping[0] = _Chunks(self.dg, source, parts, [chunk],
                                           False)
        for dep in _edges(node, source):
            dep.index_mapping[0] = _Chunks(self.dg, source, parts, [chunk],
                                           True)

    def _shuffle(self, node: Node) -> bool:
        """``node`` ends a channel shuffle: install its row coupling."""
        if not _is_view(node, 5):
            return False
        shape = node.grad_fn._saved_self_sym_sizes  # (n, c/g, g, h, w)
        chain, current, transposed = [node], node, False
        while len(current.inputs) == 1:
            current = current.inputs[0]
            name = current.grad_fn.name() if current.grad_fn else ''
            if name.startswith('TransposeBackward') and {
                    current.grad_fn._saved_dim0 % 5,
                    current.grad_fn._saved_dim1 % 5} == {1, 2}:
                transposed = True
            elif _is_view(current, 4) and transposed:
                break
            elif not name.startswith('CloneBackward'):
                return False
            chain.append(current)
        else:
            return False
        first = current  # view(n, c, h, w) -> (n, g, c/g, h, w)
        c = first.grad_fn._saved_self_sym_sizes[1]
        groups = int(shape[2])
        if int(shape[1]) * groups != c or len(first.inputs) != 1 \
                or len(first.outputs) != 1:
            return False
        for view in (first, node):
            view.type = ops.OPTYPE.ELEMENTWISE  # no flatten guesses here
            for other in (*view.inputs, *view.outputs):
                # the flatten mappings Torch-Pruning guessed when it built
                # the graph (a 5-D view halving channels) stay otherwise
                for dep in _edges(view, other) + _edges(other, view):
                    if isinstance(dep.index_mapping[0],
                                  index_mapping._FlattenIndexMapping):
                        dep.index_mapping[0] = None
        after = first.outputs[0]
        source = first.inputs[0]
        for dep in _edges(first, after):
            dep.index_mapping[0] = _Shuffle(self.dg, source, groups, False)
        for dep in _edges(after, first):
            dep.index_mapping[0] = _Shuffle(self.dg, source, groups, True)
        return True


def _is_view(node: Node, ndim: int) -> bool:
    fn = node.grad_fn
    name = fn.name() if fn is not None else ''
    shape = getattr(fn, '_saved_self_sym_sizes', None)
    return (name.startswith(('ViewBackward', 'UnsafeViewBackward',
                             'ReshapeAliasBackward'))
            and shape is not None and len(shape) == ndim)


# --- what must not be cut ----------------------------------------------


def why_not(module, names: Dict, params: Dict) -> Optional[str]:
    """Why removing channels of ``module`` (a group member) would change
    what the kept channels compute, or ``None`` if it is safe."""
    if isinstance(module, nn.Parameter):
        return (f'it reaches the bare parameter {params.get(module, "?")} of '
                'a module whose channel layout is unknown')
    name = names.get(module, type(module).__name__)
    if isinstance(module, nn.modules.conv._ConvNd) and module.groups > 1 \
            and not module.groups == module.in_channels == \
            module.out_channels:
        return (f'{name} is a grouped convolution (groups={module.groups}): '
                'its channels can only go in whole groups')
    if isinstance(module, nn.GroupNorm) and \
            module.num_groups != module.num_channels:
        return (f'{name} is a GroupNorm ({module.num_groups} groups): '
                'removing channels changes the statistics of the others')
    if isinstance(module, nn.LayerNorm):
        return (f'{name} is a LayerNorm over the channels: removing some '
                'changes the statistics of the others')
    if isinstance(module, (nn.MultiheadAttention, nn.LSTM, nn.GRU, nn.RNN)):
        return (f'{name} is a {type(module).__name__}: its channels are '
                'attention or recurrent dims')
    return None
