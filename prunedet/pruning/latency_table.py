"""Latency as a function of the channels kept per group, read from a table
measured on this machine.

FLOPs do not say what a pruned model's latency is: at batch 1 the per-op
overhead does not shrink with the width, and kernels are vectorised for some
widths only. For ``target='latency'`` the planner reads a table instead.
Every conv, linear and norm layer that a channel group resizes is timed
alone, in the runtime the model is deployed with, on an input of the shape
it gets from the model's input shape (batch 1), at a grid of (in, out)
channel counts: :data:`GRID` of each side a group can cut (the full width,
3/4, 1/2, 1/4 and 1/8 of it, at least one channel), bilinear in between and
flat below the grid; a side no group cuts keeps its width, and a norm or
depthwise conv (one count for both sides) is timed along its one count. In
``onnxruntime`` a BN is folded into its conv, so norms are not timed there,
and a session's own cost per call (that of an identity) is subtracted from
each layer's.

Layers without weights cost time that follows the channels too: a max
pool, an activation, the RoIAlign that crops a detector's RoIs from the last
conv's output (at 256x256 the demo detector's pools and RoIAlign are a
quarter of its latency). Each such "follower" is timed alone at the grid of
its channels, with the other arguments it got (the RoIs), and its time goes
with the channels of the timed layer that reads its output (directly, or
through other followers and views: fc6 reads RoIAlign's output flattened),
which the planner cuts. A follower that costs about the same at every width
(a ReLU at 32x32: the call's overhead) stays in the fixed time.

A layer's grid points are timed in turn with the whole network, by their
medians, and kept as shares of the network's latency in that loop: a load
that changes between layers (this machine trains other models) changes no
share. A point with a large output (1 MB) is timed right after an untimed
call of it: right after the network it would page-fault its output, which
it does not inside the network. The shares are
turned into seconds with the median of the network's latencies, and each
layer's latency is made non-decreasing in both counts (a point slowed by
load would otherwise ask the planner to cut into a "cliff" that is not
there, or to keep channels for speed). Layers of one configuration
(ResNet's repeated blocks) are timed once. What the table does not hold
(additions, the framework's own work, followers whose output no timed
layer reads, a module's second call) is the measured latency of the whole
network minus the layers' sum at full width, and stays fixed as channels
go. Timed alone, layers do not cost what they cost inside the network
(caches, the framework's work around them), so the layers' shares are
calibrated once: the network is timed beside a copy of it with every group
at half width, and the shares are scaled so that the table predicts that
ratio.

The table is built once and cached as JSON under ``cache_dir``, keyed by the
timed layers' signature (names, types, shapes, inputs), the input shape, the
runtime, the torch version and the thread count.
"""
import bisect
import contextlib
import copy
import hashlib
import json
import math
import os
import os.path as osp
import statistics
import tempfile
import time
import warnings
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from prunedet.deploy.latency import _nhwc, median_times, network_fn
from prunedet.deploy.runtime import ort_session, run_session

from .flops import kept_fraction, layer_sides
from .groups import ChannelGroup
from .layers import layer_pruner, reshape_layer, weightless

LATENCY_RUNTIMES = ('eager', 'channels_last', 'onnxruntime')
GRID = (1., .75, .5, .25, .125)
CACHE_DIR = osp.join('~', '.cache', 'prunedet', 'latency')
TABLE_VERSION = 6  # bump when what is measured changes
_PAGE_FAULTS = 1 << 20  # bytes of output from which a point is rewarmed
# a follower whose narrowest point costs more than this share of its widest
# is per-call overhead: it stays in the fixed time, where it uses up none
# of the share of the latency that the calibration may give the layers
FLAT = .75

_NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)
_TIMED = (nn.modules.conv._ConvNd, nn.Linear) + _NORMS
# layers whose channels are on the input's last axis, not on axis 1
_LAST_AXIS = (nn.Linear, nn.LayerNorm)


def check_runtime(runtime: str) -> None:
    if runtime not in LATENCY_RUNTIMES:
        raise ValueError(
            f'runtime must be one of {LATENCY_RUNTIMES} (where the latency '
            f'table is measured), got {runtime!r}')


def _bracket(grid: List[int], x: float) -> Tuple[int, int, float]:
    """``(i, j, w)``: ``x`` is ``grid[i]`` plus ``w`` of the way to
    ``grid[j]``; clamped to the grid's ends."""
    if x <= grid[0]:
        return 0, 0, 0.
    if x >= grid[-1]:
        return len(grid) - 1, len(grid) - 1, 0.
    j = bisect.bisect_left(grid, x)
    return j - 1, j, (x - grid[j - 1]) / (grid[j] - grid[j - 1])


class LayerLatency:
    """Seconds of one layer on a grid of (in, out) channel counts, bilinear
    in between.

    Args:
        ins, outs: ascending channel counts of the grid (one value: that
            side is not cut, or is tied to the other).
        seconds: ``seconds[i][j]`` at ``ins[i]``, ``outs[j]``; made
            non-decreasing along both axes by taking at each point the
            least of it and of every wider point (load only adds time, so
            the lesser is the better measurement).
    """

    def __init__(self, ins: Sequence[int], outs: Sequence[int],
                 seconds: Sequence[Sequence[float]]):
        self.ins, self.outs = list(ins), list(outs)
        s = [list(map(float, row)) for row in seconds]
        last_i, last_j = len(s) - 1, len(s[0]) - 1
        for i in range(last_i, -1, -1):  # from the widest point down
            for j in range(last_j, -1, -1):
                s[i][j] = min(s[i][j], s[i + 1][j] if i < last_i else
                              math.inf, s[i][j + 1] if j < last_j else
                              math.inf)
        self.seconds = s

    def __call__(self, num_in: float, num_out: float) -> float:
        i0, i1, a = _bracket(self.ins, num_in)
        j0, j1, b = _bracket(self.outs, num_out)
        s = self.seconds
        return (1 - a) * ((1 - b) * s[i0][j0] + b * s[i0][j1]) + \
            a * ((1 - b) * s[i1][j0] + b * s[i1][j1])

    def to_dict(self) -> dict:
        return dict(ins=self.ins, outs=self.outs, seconds=self.seconds)


class LatencyEstimate:
    """Latency as a function of the channels kept per group, with the
    planner's interface of :class:`~.flops.FlopsEstimate`.

    Each side of a layer keeps its width times the side's kept fraction
    (:func:`~.flops.kept_fraction`, as for FLOPs), and the layer costs what
    its table says at those counts; the rest is ``fixed``.

    Args:
        total: measured latency (seconds) of the model as it is now.
        layers: per layer name, a callable ``(in, out) -> seconds``
            (:class:`LayerLatency`; tests give made-up ones).
        widths: ``(in, out)`` channels of each layer in ``layers`` now.
        groups: the current groups (their channel counts are the reference).
        original: latency before any pruning (default: ``total``).
        follows: ``{follower: (layer, side)}``: a layer without weights
            (``layers`` holds its table, along its input channels) whose
            channels are the ``side`` (``'in'`` or ``'out'``) of ``layer``.
    """

    def __init__(self,
                 total: float,
                 layers: Dict[str, Callable[[float, float], float]],
                 widths: Dict[str, Sequence[int]],
                 groups: Iterable[ChannelGroup],
                 original: Optional[float] = None,
                 follows: Optional[Dict[str, Sequence[str]]] = None):
        self.original = float(original if original is not None else total)
        groups = list(groups)
        self.reference = {g.name: g.num_channels for g in groups}
        # (table, in width, out width, groups of the output, of the input)
        self.terms = []
        self.fixed = float(total)
        self.scale = 1.  # of the layers' seconds, set by correct()
        sides = layer_sides(groups)
        for follower, (layer, side) in (follows or {}).items():
            if layer in sides:  # its input is cut as that side, out is not
                sides[follower] = {'in': sides[layer][side], 'out': []}
        for layer, side in sides.items():
            if layer in layers:
                num_in, num_out = widths[layer]
                self.fixed -= layers[layer](num_in, num_out)
                self.terms.append((layers[layer], num_in, num_out,
                                   side['out'], side['in']))
        # a channel of a group changes only the terms that hold the group
        self._terms_of: Dict[str, list] = {}
        for term in self.terms:
            for group in dict.fromkeys(g for g, _ in term[3] + term[4]):
                self._terms_of.setdefault(group, []).append(term)

    @classmethod
    def from_measured(cls, measured: dict, groups: Iterable[ChannelGroup],
                      original: Optional[float] = None) -> 'LatencyEstimate':
        """From :func:`measure_latency`'s plain table."""
        layers = {
            name: LayerLatency(**table)
            for name, table in measured['layers'].items()
        }
        return cls(measured['total'], layers, measured['widths'], groups,
                   original, measured.get('follows'))

    def _sum(self, terms, keep: Dict[str, int]) -> float:
        total = 0.
        for table, num_in, num_out, out, inp in terms:
            change = {g: keep[g] / self.reference[g] - 1.
                      for g, _ in out + inp}
            total += table(num_in * kept_fraction(change, inp),
                           num_out * kept_fraction(change, out))
        return total * self.scale

    def __call__(self, keep: Dict[str, int]) -> float:
        """Estimated seconds with ``keep[group]`` channels in each group."""
        return self.fixed + self._sum(self.terms, keep)

    def correct(self, keep: Dict[str, int], measured: float,
                now: Dict[str, int]) -> None:
        """Rescale the layers' seconds so that the plan ``keep`` is
        estimated at ``measured`` times the model at ``now`` (its channels
        per group as it is; ``measured`` timed on copies): the table's
        calibration moved from the half-width point to the plan. The
        estimate at ``now`` is unchanged; the layers take at most all of
        it."""
        total, layers = self(now), self._sum(self.terms, now)
        saved = layers - self._sum(self.terms, keep)
        if saved <= 0 or not 0. < measured < 1.:
            return
        factor = min(max((1. - measured) * total / saved, 1e-3),
                     total / layers)
        self.scale *= factor
        self.fixed = total - layers * factor

    def saving_per_channel(self, keep: Dict[str, int], group: str) -> float:
        """Seconds saved by removing one more channel of ``group``."""
        terms = self._terms_of.get(group, ())
        less = dict(keep)
        less[group] -= 1
        return self._sum(terms, keep) - self._sum(terms, less)


class PlanTimer:
    """Times what the table only estimates: a copy of ``model`` at a plan
    beside ``model`` itself, in ``runtime`` at ``inputs[:1]``, batch 1.
    Called with the model's groups and a plan (channels kept per group),
    it returns the copy's latency over the model's
    (the median over ``blocks`` loops of the two, each a ratio of medians
    of interleaved runs, ``repeats`` runs in all: a stretch of the machine
    slowing one of them moves one block's ratio, not the result; the same
    plan measured 0.517 and 0.585 of VGG-19 in two single loops). The
    pruner uses it at the last step of a latency target
    (:class:`~.pruner.ChannelPruner`)."""

    def __init__(self, model: nn.Module, inputs: torch.Tensor,
                 runtime: str = 'eager', repeats: int = 60,
                 threads: Optional[int] = None, blocks: int = 5,
                 budget: float = 2.):
        check_runtime(runtime)
        self.model, self.inputs = model, inputs[:1].detach().cpu()
        self.runtime, self.repeats, self.threads = runtime, repeats, threads
        self.blocks, self.budget = blocks, budget

    def __call__(self, groups: Iterable[ChannelGroup],
                 keep: Dict[str, int]) -> float:
        with _as_it_was(self.model, self.threads), \
                tempfile.TemporaryDirectory() as tmp:
            plan = at_plan(self.model, list(groups), keep)
            fns = [network_fn(m, self.runtime, self.inputs, tmp)
                   for m in (plan, self.model)]
            ratios, repeats = [], self._repeats(fns)
            for _ in range(self.blocks):
                planned, now = _median_times(
                    fns, max(repeats // self.blocks, 3))
                ratios.append(planned / now)
        return statistics.median(ratios)

    def _repeats(self, fns) -> int:
        """``repeats``, fewer for a slow network: a plan is timed in about
        ``budget`` seconds (the demo detector's 45 ms a call would take 11
        s at 60 runs of the two over 4 plans; a training step waits)."""
        with torch.no_grad():
            for fn in fns:
                fn()  # the first call of a session is not typical
            start = time.perf_counter()
            for fn in fns:
                fn()
        pair = time.perf_counter() - start
        return max(min(self.repeats, int(self.budget / max(pair, 1e-9))),
                   3 * self.blocks)


# --- measuring -----------------------------------------------------------


def _grid(width: int) -> List[int]:
    return sorted({max(1, round(width * f)) for f in GRID})


def _tied(module: nn.Module, num_in: int, num_out: int) -> bool:
    """Whether cutting the output also cuts the input (norms, depthwise
    convs), seen on a weightless copy."""
    if num_out < 2:
        return isinstance(module, _NORMS)
    copy_ = weightless(module)
    pruner = layer_pruner(copy_)
    reshape_layer(copy_, pruner, num_in, num_out - 1)
    return pruner.get_in_channels(copy_) != num_in


def _layer_at(module: nn.Module, num_in: int, num_out: int) -> nn.Module:
    """A copy of ``module`` with these channel counts and made-up values
    (built from a weightless copy: fc6's weights are not copied per
    point)."""
    layer = weightless(module)
    reshape_layer(layer, layer_pruner(layer), num_in, num_out)
    layer = layer.to_empty(device='cpu').eval()
    with torch.no_grad():
        for p in layer.parameters():
            p.normal_(0, .01)
        for name, b in layer.named_buffers():
            b.fill_(1 if name.endswith('var') else 0)
    return layer


def _leaves(model: nn.Module):
    return [(n, m) for n, m in model.named_modules()
            if not next(m.children(), None)]


def _storage(x) -> Optional[int]:
    return x.untyped_storage().data_ptr() if torch.is_tensor(x) else None


def _trace_calls(model: nn.Module, inputs: torch.Tensor,
                 names: Sequence[str], sides: dict, tmp: str):
    """Run the network on ``inputs`` (as
    :func:`~prunedet.deploy.latency.network_fn` runs it) and return the
    input shape of each timed layer in ``names``, and the followers:
    ``{name: (layer, side, args)}`` for each leaf module without weights
    whose output a timed layer reads (through other followers and views:
    the same storage), ``args`` what it was called with."""
    modules = dict(model.named_modules())
    # (name, args, output) in call order; held, so that no storage is
    # reused by a later tensor while storages are compared
    calls, handles = [], []

    def record(name):
        def hook(module, args, output):
            if args and torch.is_tensor(args[0]) and args[0].dim() >= 2 \
                    and torch.is_tensor(output):
                calls.append((name, args, output))
        return hook

    for name, module in _leaves(model):
        handles.append(module.register_forward_hook(record(name)))
    try:
        with torch.no_grad():
            network_fn(model, 'eager', inputs, tmp)()
    finally:
        for handle in handles:
            handle.remove()
    shapes, follows = {}, {}
    reader = {}  # storage -> (layer, side) of the first timed layer after
    for name, args, output in reversed(calls):
        module = modules[name]
        if name in names:
            shapes[name] = list(args[0].shape)  # the first call's
            # a norm's or depthwise conv's input is cut with its output
            side = 'in' if sides[name]['in'] else (
                'out' if sides[name]['out'] and _tied(
                    module, args[0].shape[1], output.shape[1]) else None)
            reader[_storage(args[0])] = (name, side) if side else None
        elif next(module.parameters(), None) is not None:
            reader[_storage(args[0])] = None  # a layer that is not cut
        else:
            target = reader.get(_storage(output))
            if target is not None:
                follows[name] = (*target, args)
            reader[_storage(args[0])] = target
    return shapes, follows


def _layer_fn(layer: nn.Module, args: tuple, runtime: str,
              path: str) -> Callable[[], object]:
    """A call of ``layer(*args)`` in ``runtime`` (channels on the first
    argument)."""
    if runtime == 'eager':
        return lambda: layer(*args)
    if runtime == 'channels_last':
        layer = layer.to(memory_format=torch.channels_last)
        args = (_nhwc(args[0]), *args[1:])
        return lambda: layer(*args)
    if hasattr(layer, 'use_torchvision'):  # mmcv's RoIAlign: exported as
        layer = copy.copy(layer)  # torchvision's, as the network's is
        layer.use_torchvision = True  # (prunedet.deploy.parts)
    # TorchScript-based export: a single layer needs none of the newer
    # exporter's coverage, and it is 50 times faster (0.05 s against 3 s)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.onnx.export(layer, args, path, dynamo=False,
                          input_names=[f'input{i}' for i in range(len(args))])
    session = ort_session(path, spinning=False)  # timed in turn
    return lambda: run_session(session, *args)


def _nbytes(value) -> int:
    if torch.is_tensor(value):
        return value.nelement() * value.element_size()
    if isinstance(value, (list, tuple)):
        return sum(map(_nbytes, value))
    return 0


def _median_times(fns: List[Callable], repeats: int) -> List[float]:
    """:func:`~prunedet.deploy.latency.median_times`, where a call whose
    output is large is timed right after an untimed one of it. Right after
    the whole network, the allocator gives a large output fresh pages
    (page faults: a BN at 256x256 took 6 times its time), which inside the
    network, called in a loop, it does not. Small outputs are timed as
    they come: a call right after itself finds its weights in the caches,
    which inside the network it does not (VGG-19's late layers at 32x32)."""
    with torch.no_grad():
        rewarm = {id(fn) for fn in fns if _nbytes(fn()) >= _PAGE_FAULTS}
    return median_times(fns, repeats,
                        before=lambda fn: fn() if id(fn) in rewarm else None)


def _in_shares(fns: List[Callable], shape: Sequence[int], runtime: str,
               tmp: str, repeats: int, network: Callable[[], object]
               ) -> Tuple[List[float], float]:
    """Median seconds of each of ``fns`` in shares of the whole
    ``network``'s, timed in the same loop; and the network's seconds."""
    if runtime == 'onnxruntime':  # a session's own cost per call, which
        # the whole network pays once, not once per layer: subtracted
        fns = fns + [_layer_fn(nn.Identity(), (torch.randn(*shape), ),
                               runtime, osp.join(tmp, 'identity.onnx'))]
    seconds = _median_times(fns + [network], repeats)
    whole = seconds.pop()
    if runtime == 'onnxruntime':
        call = seconds.pop()
        seconds = [max(s - call, 0.) for s in seconds]
    return [s / whole for s in seconds], whole


def _time_layer(module: nn.Module, shape: Sequence[int], ins: List[int],
                outs: List[int], tied: bool, runtime: str, tmp: str,
                repeats: int, network: Callable[[], object]
                ) -> Tuple[dict, float]:
    """The layer's grid, in shares of the whole ``network``'s latency
    (timed in the same loop)."""
    axis = -1 if isinstance(module, _LAST_AXIS) else 1
    fns = []
    for num_in in ins:
        for num_out in outs:
            layer = _layer_at(module, num_out if tied else num_in, num_out)
            x = list(shape)
            x[axis] = layer_pruner(layer).get_in_channels(layer)
            fns.append(_layer_fn(layer, (torch.randn(*x), ), runtime,
                                 osp.join(tmp, f'layer{len(fns)}.onnx')))
    shares, whole = _in_shares(fns, shape, runtime, tmp, repeats, network)
    return dict(ins=ins, outs=outs,
                seconds=[shares[i * len(outs):(i + 1) * len(outs)]
                         for i in range(len(ins))]), whole


def _time_follower(module: nn.Module, args: tuple, runtime: str, tmp: str,
                   repeats: int, network: Callable[[], object]
                   ) -> Tuple[dict, float]:
    """A layer without weights at the grid of its first argument's
    channels (axis 1), in shares of the whole ``network``'s latency; one
    out count (not cut). It gets the first channels of the activations the
    network gave it, and the other arguments as they were: its time may
    depend on the values (mmcv's RoIAlign takes 22 ms on random values, 14
    on the demo detector's features and 10 on zeros)."""
    ins, fns = _grid(args[0].shape[1]), []
    for num_in in ins:
        x = args[0].narrow(1, 0, num_in).clone(
            memory_format=torch.contiguous_format)
        fns.append(_layer_fn(module, (x, *args[1:]), runtime,
                             osp.join(tmp, f'follower{len(fns)}.onnx')))
    shares, whole = _in_shares(fns, args[0].shape, runtime, tmp, repeats,
                               network)
    return dict(ins=ins, outs=[ins[-1]],
                seconds=[[v] for v in shares]), whole


def measure_latency(model: nn.Module,
                    inputs: torch.Tensor,
                    groups: Iterable[ChannelGroup],
                    runtime: str = 'eager',
                    cache_dir: Optional[str] = CACHE_DIR,
                    repeats: int = 20,
                    threads: Optional[int] = None) -> dict:
    """The plain latency table of ``model`` at ``inputs[:1]``'s shape in
    ``runtime`` with ``threads`` (default: as many as torch uses now):
    ``{'total': s, 'layers': {name: LayerLatency dict}, 'widths': {name:
    [in, out]}, 'follows': {follower: [layer, side]}}``; read from
    ``cache_dir`` when it holds it, measured and written there otherwise
    (``None``: no cache)."""
    check_runtime(runtime)
    with _as_it_was(model, threads):
        return _cached_table(model, inputs, groups, runtime, cache_dir,
                             repeats)


@contextlib.contextmanager
def _as_it_was(model: nn.Module, threads: Optional[int]):
    """Time with ``threads`` (default: as many as torch uses now); after,
    torch's threads and ``model``'s train/eval mode are what they were
    (timing puts the model in eval mode)."""
    before, was_training = torch.get_num_threads(), model.training
    torch.set_num_threads(threads or before)
    try:
        yield
    finally:
        model.train(was_training)
        torch.set_num_threads(before)


def _cached_table(model, inputs, groups, runtime, cache_dir,
                  repeats) -> dict:
    groups = list(groups)
    inputs = inputs[:1].cpu()
    sides = layer_sides(groups)
    modules = dict(model.named_modules())
    skip = _NORMS if runtime == 'onnxruntime' else ()  # folded into convs
    names = [
        n for n in sides if isinstance(modules.get(n), _TIMED)
        and not isinstance(modules[n], skip)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        shapes, follows = _trace_calls(model, inputs, names, sides, tmp)
        names = [n for n in names if n in shapes]  # not called: no cost
        widths = {}
        for n in names:
            pruner = layer_pruner(modules[n])
            widths[n] = [pruner.get_in_channels(modules[n]),
                         pruner.get_out_channels(modules[n])]
        key = dict(version=TABLE_VERSION, runtime=runtime,
                   input=list(inputs.shape), torch=torch.__version__,
                   threads=torch.get_num_threads(), grid=GRID,
                   repeats=repeats,  # a quick noisy table is not reused
                   layers=[[n, repr(modules[n]), shapes[n],
                            sorted(k for k, v in sides[n].items() if v)]
                           for n in names],
                   follows=[[n, repr(modules[n]), layer, side,
                             [_shape(a) for a in args]]
                            for n, (layer, side, args) in follows.items()])
        path = None
        if cache_dir is not None:
            digest = hashlib.sha1(
                json.dumps(key).encode()).hexdigest()[:20]
            path = osp.join(osp.expanduser(cache_dir),
                            f'{runtime}_{digest}.json')
            if osp.isfile(path):
                with open(path) as f:
                    return json.load(f)
        table = _measure(model, inputs, groups, modules, names, sides,
                         shapes, widths, follows, runtime, tmp, repeats)
    if path is not None:
        os.makedirs(osp.dirname(path), exist_ok=True)
        with open(path + '.part', 'w') as f:
            json.dump(dict(table, key=key), f)
        os.replace(path + '.part', path)  # a reader never sees half a file
    return table


def at_plan(model: nn.Module, groups: List[ChannelGroup],
            keep: Dict[str, int]) -> nn.Module:
    """A copy of ``model`` (eval mode) with ``keep[group]`` channels in
    each group: its layers reshaped, values as they come (what it
    computes does not matter to its latency)."""
    change = {g.name: keep[g.name] / g.num_channels - 1. for g in groups}
    copy_ = copy.deepcopy(model).eval()
    modules = dict(copy_.named_modules())
    for name, side in layer_sides(groups).items():
        pruner = layer_pruner(modules.get(name))
        if pruner is not None:
            module = modules[name]
            reshape_layer(
                module, pruner,
                round(pruner.get_in_channels(module) *
                      kept_fraction(change, side['in'])),
                round(pruner.get_out_channels(module) *
                      kept_fraction(change, side['out'])))
    return copy_


def _calibration(model, inputs, groups, estimate, runtime, tmp,
                 repeats) -> float:
    """The factor that makes the layers' sum scale like the network: the
    network at full and at half width timed side by side, and the layers'
    share of it chosen so that the table predicts that ratio (at most all
    of the latency; 1 if the half-width copy does not run)."""
    keep = {g.name: max(1, g.num_channels // 2) for g in groups}
    try:
        half = at_plan(model, groups, keep)
        fns = [network_fn(m, runtime, inputs, tmp) for m in (model, half)]
        full_s, half_s = _median_times(fns, repeats)
    except Exception as error:  # a model whose attributes mirror widths
        warnings.warn(f'latency table not calibrated: the half-width copy '
                      f'does not run ({error})')
        return 1.
    full = {g.name: g.num_channels for g in groups}
    layers_full = estimate(full) - estimate.fixed
    layers_half = estimate(keep) - estimate.fixed
    if layers_full <= layers_half:
        return 1.
    factor = estimate.original * (1 - half_s / full_s) / (
        layers_full - layers_half)
    return min(max(factor, 1e-3), estimate.original / layers_full)


def _shape(arg):
    return list(arg.shape) if torch.is_tensor(arg) else repr(arg)


def _measure(model, inputs, groups, modules, names, sides, shapes, widths,
             follows, runtime, tmp, repeats) -> dict:
    network = network_fn(model, runtime, inputs, tmp)
    signatures, shares, wholes = {}, {}, []
    for n in names:
        module, (num_in, num_out) = modules[n], widths[n]
        tied = _tied(module, num_in, num_out)
        ins = [num_in] if tied or not sides[n]['in'] else _grid(num_in)
        outs = _grid(num_out) if sides[n]['out'] or tied else [num_out]
        signature = (repr(module), tuple(shapes[n]), tuple(ins),
                     tuple(outs), tied)
        if signature not in shares:
            shares[signature], whole = _time_layer(
                module, shapes[n], ins, outs, tied, runtime, tmp, repeats,
                network)
            wholes.append(whole)
        signatures[n] = signature
    flat = set()  # followers that cost the same at every width
    for n, (layer, side, args) in follows.items():
        signature = (repr(modules[n]), tuple(map(str, map(_shape, args))))
        if signature not in shares and signature not in flat:
            try:
                table, whole = _time_follower(modules[n], args, runtime,
                                              tmp, repeats, network)
            except Exception as error:  # not exported, say: left fixed
                warnings.warn(f'latency table: {n} not timed ({error}); '
                              'its time is taken as fixed')
                continue
            wholes.append(whole)
            seconds = table['seconds']
            if seconds[0][0] > FLAT * seconds[-1][0]:
                flat.add(signature)
            else:
                shares[signature] = table
        if signature not in flat:
            signatures[n] = signature
            widths[n] = [args[0].shape[1]] * 2
    total = statistics.median(wholes or _median_times([network], repeats))

    def in_seconds(factor):
        tables = {
            signature: dict(table, seconds=[[v * factor for v in row]
                                            for row in table['seconds']])
            for signature, table in shares.items()
        }
        return dict(total=total, widths=widths, layers={
            n: tables[signature] for n, signature in signatures.items()},
                    follows={n: list(follows[n][:2]) for n in signatures
                             if n in follows})

    measured = in_seconds(total)
    factor = _calibration(model, inputs, groups,
                          LatencyEstimate.from_measured(measured, groups),
                          runtime, tmp, repeats)
    return dict(in_seconds(total * factor), calibration=factor)
