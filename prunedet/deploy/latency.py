"""Inference latency of a model in several runtimes, pruned against
unpruned, timed side by side.

A pruned model is only worth its FLOPs if it runs faster in the runtime it
is deployed with, so the same network is timed as

* ``eager``: PyTorch as trained (BN unfolded, mmcv's kernels);
* ``channels_last``: the same, weights and inputs in NHWC (oneDNN's
  preferred layout for convolutions);
* ``folded``: eager with BN folded into the convs;
* ``torchscript``: folded, traced, frozen and ``optimize_for_inference``
  (convs pre-packed for oneDNN);
* ``onnxruntime``: the exported ONNX file (BN folded).

Models are timed alternately in one loop (pruned, unpruned, pruned, ...)
and compared by their median, so machine load hits both alike.
"""
import copy
import json
import os.path as osp
import random
import statistics
import time
import warnings
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from prunedet.models.detectors.tracing import grid_rois

from .export import export_onnx
from .fold import fold_batchnorm
from .parts import (INPUT_NAMES, OUTPUT_NAMES, dynamic_shapes,
                    example_inputs, exportable_parts, num_test_rois)
from .runtime import ort_session, run_session

RUNTIMES = ('eager', 'channels_last', 'folded', 'torchscript', 'onnxruntime')


def _torchscript(part: nn.Module, args: tuple) -> Callable:
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter('ignore')
        traced = torch.jit.trace(part.eval(), args, check_trace=False)
        return torch.jit.optimize_for_inference(torch.jit.freeze(traced))


def _nhwc(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) \
        if x.dim() == 4 else x


def part_runners(model: nn.Module, runtime: str, shape: Sequence[int],
                 workdir: str) -> Dict[str, Callable]:
    """``{part: fn(*tensors) -> outputs}`` of ``model``'s exportable parts
    (:func:`prunedet.deploy.parts.exportable_parts`) in ``runtime``."""
    if runtime not in RUNTIMES:
        raise ValueError(f'unknown runtime {runtime!r}, choose from '
                         f'{list(RUNTIMES)}')
    model.eval()
    if runtime in ('eager', 'channels_last'):
        if runtime == 'channels_last':
            model = copy.deepcopy(model).to(memory_format=torch.channels_last)
        parts = exportable_parts(model, torchvision_roi_align=False)
        if runtime == 'eager':
            return parts
        return {n: (lambda *x, p=p: p(*map(_nhwc, x)))
                for n, p in parts.items()}
    parts = exportable_parts(fold_batchnorm(model))
    if runtime == 'folded':
        return parts
    examples = example_inputs(parts, shape, 2, num_test_rois(model)
                              if 'roi_head' in parts else 0)
    if runtime == 'torchscript':
        return {n: _torchscript(p, examples[n]) for n, p in parts.items()}
    runners = {}
    for name, path in _onnx_files(parts, examples, model, workdir).items():
        session = ort_session(path, spinning=False)  # timed in turn
        runners[name] = lambda *x, s=session: run_session(s, *x)
    return runners


def _onnx_files(parts, examples, model, workdir) -> Dict[str, str]:
    return {
        name: export_onnx(part, examples[name],
                          osp.join(workdir, f'{id(model)}_{name}.onnx'),
                          dynamic_shapes(name), INPUT_NAMES[name],
                          OUTPUT_NAMES[name])
        for name, part in parts.items()
    }


def node_times(model: nn.Module, inputs: torch.Tensor, workdir: str,
               runs: int = 200) -> Dict[str, Tuple[str, float]]:
    """Where a classifier's time goes in onnxruntime: microseconds per run
    of each node of its exported network, from onnxruntime's own profiler
    and after its graph optimisations (a conv fused with its ReLU is one
    node, named after its output), ``{node: (op type, us)}``; the
    session's whole run is ``'(run)'``. Names match between a model and
    its pruned copy, so the two can be compared node by node."""
    parts = exportable_parts(fold_batchnorm(model.eval()))
    if set(parts) != {'model'}:
        raise ValueError('node_times profiles a classifier, got the parts '
                         f'{sorted(parts)}')
    examples = example_inputs(parts, inputs.shape[1:], 2, 0)
    path = _onnx_files(parts, examples, model, workdir)['model']
    session = ort_session(path, spinning=False,
                          profile=osp.splitext(path)[0])
    for _ in range(runs):
        run_session(session, inputs)
    with open(session.end_profiling()) as f:
        events = json.load(f)
    totals, done = {}, 0
    for e in events:
        if e.get('cat') == 'Session' and e['name'] == 'model_run':
            done += 1
            op, name = '(run)', '(run)'
        elif e.get('cat') == 'Node' and e['name'].endswith('_kernel_time'):
            op, name = e['args']['op_name'], e['name'][:-len('_kernel_time')]
        else:
            continue
        totals[name] = (op, totals.get(name, (op, 0.))[1] + e['dur'])
    return {n: (op, us / done) for n, (op, us) in totals.items()}


def network_fn(model: nn.Module, runtime: str, inputs: torch.Tensor,
               workdir: str) -> Callable[[], object]:
    """A call that runs the whole network on ``inputs`` as FLOPs are
    counted: a classifier to its logits, a two-stage detector through the
    RPN head and the RoI head on the test-time number of RoIs per image
    (as :func:`prunedet.models.detectors.two_stage_forward`)."""
    runners = part_runners(model, runtime, inputs.shape[1:], workdir)
    if 'model' in runners:
        return lambda: runners['model'](inputs)
    n, _, h, w = inputs.shape
    rois = grid_rois(num_test_rois(model), n, h, w, inputs.device)
    return lambda: runners['roi_head'](runners['features'](inputs)[0], rois)


def median_times(fns: Sequence[Callable], repeats: int, warmup: int = 2,
                 before: Optional[Callable[[Callable], None]] = None
                 ) -> List[float]:
    """Median seconds per call of each ``fn``, called in turn, in a new
    (seeded) order each round: a call is slower after one that evicted its
    weights from the cache, so a fixed order charges each model for the
    one before it (in a fixed loop of six ResNet-20s the same network timed
    first and last measured 0.885 of each other); ``before(fn)``, untimed,
    right before each timed call."""
    times = [[] for _ in fns]
    order = random.Random(0)
    with torch.no_grad():
        for i in range(warmup + repeats):
            turn = list(zip(fns, times))
            if len(turn) > 2:  # two alternate: each follows the other
                order.shuffle(turn)
            for fn, ts in turn:
                if before is not None:
                    before(fn)
                t = time.perf_counter()
                fn()
                if i >= warmup:
                    ts.append(time.perf_counter() - t)
    return [statistics.median(ts) for ts in times]


def latency_rows(pruned: nn.Module,
                 full: nn.Module,
                 inputs: torch.Tensor,
                 flops_ratio: float,
                 workdir: str,
                 runtimes: Sequence[str] = RUNTIMES,
                 repeats: int = 20) -> List[dict]:
    """Pruned / unpruned latency per runtime, timed side by side, next to
    the FLOPs ratio (the physical limit of the latency ratio)."""
    rows = []
    for runtime in runtimes:
        fns = [network_fn(m, runtime, inputs, workdir) for m in (pruned, full)]
        t_pruned, t_full = median_times(fns, repeats)
        ratio = t_pruned / t_full
        rows.append(dict(runtime=runtime, pruned_ms=1e3 * t_pruned,
                         full_ms=1e3 * t_full, latency_ratio=ratio,
                         flops_ratio=flops_ratio,
                         latency_per_flops=ratio / flops_ratio))
    return rows


def format_rows(model: str, batch: int, rows: List[dict]) -> List[str]:
    """Table lines: model, batch, runtime, times, ratios."""
    return [
        f'{model} | {batch} | {r["runtime"]} | {r["pruned_ms"]:.2f} / '
        f'{r["full_ms"]:.2f} ms | {r["flops_ratio"]:.3f} | '
        f'{r["latency_ratio"]:.3f} | {r["latency_per_flops"]:.3f}'
        for r in rows
    ]


TABLE_HEADER = ('model | batch | runtime | pruned / unpruned | FLOPs ratio | '
                'latency ratio | latency / FLOPs')
