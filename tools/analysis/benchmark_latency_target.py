"""A latency target, planned on the per-layer table, against the latency
measured afterwards.

For VGG-19 (BN) and ResNet-56 at CIFAR size and the demo detector (Faster
R-CNN VGG16 x0.25 of ``configs/demo/faster_rcnn_vgg16_shapes.py`` at
256x256, its backbone pruned), batch 1, on this machine's CPU: build (or
read from the cache) the latency table in ``--runtime``
(:mod:`prunedet.pruning.latency_table`), prune a copy of the model in one
hard step to ``--target`` of its latency (``target='latency'``, global
ranking: the greedy knapsack of :mod:`prunedet.pruning.pruner`; the step
times up to ``--rounds`` plans and applies the one measured closest to the
target, as the hook's last step does), prune another copy to the same
share of its FLOPs for comparison, and time both beside the unpruned model
``--checks`` times, each with new sessions in a loop of its own (pruned,
FLOPs-pruned, unpruned, ..., by their medians:
:func:`prunedet.deploy.latency.median_times`): the median of the checks is
the measured ratio, and each is printed, since a single loop moves by a few
hundredths from run to run. Weights are
random, so channels are ranked by L1 norm on random values: this measures
how well the plan hits the latency, not accuracy.

The table models, and ``measured`` times, the network the hook prunes: for
the detector that is its tensor forward (backbone, RPN head, RoIAlign and
the bbox head on the test-time number of RoIs,
:func:`prunedet.deploy.latency.network_fn`). A deployed detector also turns
the RPN's outputs into proposals (anchors, decoding, NMS) and the bbox
head's into detections (per-class NMS); that work does not shrink with the
channels, so the whole inference (``whole``: mmdet's post-processing around
the network's parts in the same runtime,
:class:`prunedet.deploy.runtime.OnnxTwoStageDetector`) is timed beside it.

    python tools/analysis/benchmark_latency_target.py [--target 0.5] \\
        [--runtime eager] [--repeats 50] [--models vgg19 resnet56 detector]
"""
import argparse
import copy
import os.path as osp
import statistics
import sys
import tempfile
import time

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))

import prunedet  # noqa: E402,F401
from benchmark_pruning import MODELS_CFG  # noqa: E402
from mmdet.registry import MODELS as DET_MODELS  # noqa: E402
from mmengine.registry import DefaultScope  # noqa: E402
from mmpretrain.registry import MODELS  # noqa: E402
from prunedet.criteria import L1Norm  # noqa: E402
from prunedet.deploy.latency import (median_times, network_fn,  # noqa: E402
                                     part_runners)
from prunedet.deploy.export import (detector_info,  # noqa: E402
                                    write_deploy_info)
from prunedet.deploy.runtime import OnnxTwoStageDetector  # noqa: E402
from prunedet.pruning.flops import FlopsEstimate, measure_flops  # noqa: E402
from prunedet.pruning.groups import ChannelGraph  # noqa: E402
from prunedet.pruning.latency_table import (  # noqa: E402
    CACHE_DIR, LATENCY_RUNTIMES, LatencyEstimate, PlanTimer, measure_latency)
from prunedet.pruning.pruner import (ChannelPruner,  # noqa: E402
                                     UnreachableTargetError)
from prunedet.pruning.tracing import trace_forward  # noqa: E402
from prunedet.utils.config import load_config  # noqa: E402

DETECTOR = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))), 'configs', 'demo', 'faster_rcnn_vgg16_shapes.py')
MODEL_NAMES = list(MODELS_CFG) + ['detector']


def build(name):
    """The unpruned model (eval mode) and a batch-1 input: the classifiers
    at CIFAR's 32x32, the demo detector at its 256x256."""
    if name == 'detector':
        cfg = load_config(DETECTOR)
        with DefaultScope.overwrite_default_scope('mmdet'):
            model = DET_MODELS.build(cfg.model)
        model.cfg = cfg  # its heads' post-processing, for whole_fn
        return model.eval(), torch.randn(1, 3, 256, 256)
    return MODELS.build(MODELS_CFG[name]).eval(), torch.randn(1, 3, 32, 32)


def whole_fn(model, runtime, x, folder):
    """A detector's whole inference on ``x``: its network's parts in
    ``runtime`` and mmdet's proposals and detections around them (NMS,
    RoIAlign on the proposals), as deployed."""
    write_deploy_info(dict(task='detection', **detector_info(model)), folder)
    detector = OnnxTwoStageDetector(
        folder, parts=part_runners(model, runtime, x.shape[1:], folder))
    h, w = x.shape[2:]
    metas = [dict(img_shape=(h, w), ori_shape=(h, w), scale_factor=(1., 1.))]
    return lambda: detector.predict(x, metas)


def pruned_copy(full, x, target, ratio, round_to, measured, runtime='eager',
                rounds=0, repeats=50):
    """A copy of ``full`` pruned in one hard step to ``ratio`` of its
    FLOPs or latency; with the estimated ratio of the latter, and the
    plans the step timed (``rounds``: at most that many, to correct the
    table where the plan is)."""
    model = copy.deepcopy(full).train()
    forward = trace_forward(model)
    graph = ChannelGraph(model, x.repeat(2, 1, 1, 1), forward, ['backbone'])
    total, per_layer = measure_flops(model, x, forward)
    latency = LatencyEstimate.from_measured(measured, graph.groups())
    pruner = ChannelPruner(
        graph, L1Norm(), target=target, global_ranking=True,
        round_to=round_to, soft_steps=0,
        flops=FlopsEstimate(total, per_layer, graph.groups()),
        latency=latency, latency_rounds=rounds,
        latency_timer=PlanTimer(model, x, runtime, repeats)
        if target == 'latency' and rounds else None)
    pruner.check(ratio)
    timed = pruner.step(ratio, last=True).timed
    keep = {n: c[0] for n, c in pruner.channels().items()}
    pruned_flops, _ = measure_flops(model, x, forward)
    return model.eval(), pruned_flops / total, latency(keep) / \
        latency.original, timed


def benchmark(name, target, runtime, repeats, round_to, cache_dir,
              table_repeats, rounds, checks=3):
    torch.manual_seed(0)
    full, x = build(name)
    graph = ChannelGraph(full, x.repeat(2, 1, 1, 1), trace_forward(full),
                         ['backbone'])
    t = time.perf_counter()
    measured = measure_latency(full, x, graph.groups(), runtime, cache_dir,
                               table_repeats)
    table_s = time.perf_counter() - t
    try:
        by_latency, flops_l, estimated, timed = pruned_copy(
            full, x, 'latency', target, round_to, measured, runtime, rounds,
            repeats)
    except UnreachableTargetError as error:  # the table says so: report it
        return dict(model=name, unreachable=str(error))
    by_flops, flops_f, estimated_f, _ = pruned_copy(
        full, x, 'flops', target, round_to, measured)
    runs = []  # each check: new sessions, a loop of its own
    for _ in range(checks):
        with tempfile.TemporaryDirectory() as tmp:
            fns = [network_fn(m, runtime, x, tmp)
                   for m in (by_latency, by_flops, full)]
            if name == 'detector':  # the whole inference, in the same loop
                fns += [whole_fn(m, runtime, x, tempfile.mkdtemp(dir=tmp))
                        for m in (by_latency, full)]
            runs.append(median_times(fns, repeats))
    checked = [r[0] / r[2] for r in runs]
    times = [statistics.median(r[i] for r in runs)
             for i in range(len(runs[0]))]
    t_latency, t_flops, t_full = times[:3]
    whole = dict(whole=times[3] / times[4], whole_pruned_ms=1e3 * times[3],
                 whole_full_ms=1e3 * times[4]) if len(times) > 3 else {}
    return dict(whole, model=name, runtime=runtime, target=1. - target,
                estimated=estimated, measured=statistics.median(checked),
                checks=checked,
                pruned_ms=1e3 * t_latency, full_ms=1e3 * t_full,
                table_ms=1e3 * measured['total'], flops_ratio=flops_l,
                flops_plan_measured=statistics.median(
                    r[1] / r[2] for r in runs),
                flops_plan_estimated=estimated_f, flops_plan_flops=flops_f,
                table_s=table_s, calibration=measured.get('calibration', 1.),
                timed=timed)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--target', type=float, default=0.5,
                        help='share of the latency removed')
    parser.add_argument('--runtime', default='eager',
                        choices=LATENCY_RUNTIMES)
    parser.add_argument('--repeats', type=int, default=200,
                        help='timed runs of each model, interleaved')
    parser.add_argument('--table-repeats', type=int, default=20,
                        help='timed runs of each point of the table')
    parser.add_argument('--threads', type=int, default=None,
                        help="torch's (and onnxruntime's) threads; on a "
                        'machine busy with other work, 1 times steadily')
    parser.add_argument('--round-to', type=int, default=1)
    parser.add_argument('--checks', type=int, default=3,
                        help='times the pruned models are measured '
                        'afterwards, each with new sessions in a loop of '
                        'its own (the median is reported, and each)')
    parser.add_argument('--rounds', type=int, default=4,
                        help='plans the latency step may time to correct '
                        'the table (the hook\'s latency_rounds; 0: the '
                        'table is trusted)')
    parser.add_argument('--cache-dir', default=CACHE_DIR,
                        help='latency tables; "none": measured anew')
    parser.add_argument('--models', nargs='+', default=MODEL_NAMES,
                        choices=MODEL_NAMES)
    args = parser.parse_args(argv)
    cache = None if args.cache_dir == 'none' else args.cache_dir
    if args.threads:  # the table's and the timed models'
        torch.set_num_threads(args.threads)
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads, '
          'batch 1 (classifiers at 32x32, detector at 256x256), CPU, '
          f'runtime {args.runtime}, latency target {1 - args.target:.2f} '
          'of the unpruned')
    rows = [
        benchmark(m, args.target, args.runtime, args.repeats, args.round_to,
                  cache, args.table_repeats, args.rounds, args.checks)
        for m in args.models
    ]
    print('model | target | estimated (after the step\'s correction) | '
          'plans timed by the step '
          '(estimated -> measured) | measured (pruned / unpruned; '
          'each check) | '
          'FLOPs ratio | FLOPs-target plan: FLOPs, estimated, measured '
          'latency | table: build, unpruned, calibration | detector\'s '
          'whole inference with NMS (pruned / unpruned)')
    for r in rows:
        if 'unreachable' in r:
            print(f'{r["model"]} | unreachable: {r["unreachable"]}')
            continue
        print(' | '.join([
            r['model'], f'{r["target"]:.3f}', f'{r["estimated"]:.3f}',
            ', '.join(f'{e:.3f} -> {m:.3f}' for e, m in r['timed']) or '-',
            f'{r["measured"]:.3f} ({r["pruned_ms"]:.2f} / '
            f'{r["full_ms"]:.2f} ms; ' +
            ', '.join(f'{c:.3f}' for c in r['checks']) + ')',
            f'{r["flops_ratio"]:.3f}',
            f'{r["flops_plan_flops"]:.3f}, {r["flops_plan_estimated"]:.3f}, '
            f'{r["flops_plan_measured"]:.3f}',
            f'{r["table_s"]:.1f} s, {r["table_ms"]:.2f} ms, '
            f'{r["calibration"]:.2f}',
            f'{r["whole"]:.3f} ({r["whole_pruned_ms"]:.2f} / '
            f'{r["whole_full_ms"]:.2f} ms)' if 'whole' in r else '-'
        ]))
    return rows


if __name__ == '__main__':
    main()
