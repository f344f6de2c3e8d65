"""What pruning while training costs, measured side by side in one run.

For VGG-19 (BN) and ResNet-56 at CIFAR size, on this machine's CPU:

1. criterion overhead: the time ``GradientNorm`` spends accumulating scores
   in every optimizer step, as a ratio of a plain training step;
2. hard-prune event: a ``ChannelPruner.step`` that physically removes
   channels (scoring, graph cut, optimizer surgery, regrouping), as a ratio of
   a training step, and where its time goes (the phases of
   :data:`prunedet.pruning.phases.PHASES`); Torch-Pruning's own
   ``MetaPruner.step`` on an identical model (no optimizer state) is timed
   beside it for reference. ``--events K`` progressive events reach the
   ratio (a few training steps between them, as in training), each of ours
   next to one of Torch-Pruning's (``iterative_steps=K``): the medians are
   compared, as one event alone is at the mercy of the machine's noise;
3. inference: pruned / unpruned latency (batch 1, and batch 32) next to
   the FLOPs ratio; with ``--profile``, where onnxruntime's batch-1 time
   goes, node by node, pruned against unpruned (why latency does or does
   not follow the FLOPs).

    python tools/analysis/benchmark_pruning.py [--batch 128] [--repeats 5]
        [--events 5] [--round-to 8] [--profile]
"""
import argparse
import os.path as osp
import statistics
import sys
import tempfile
import time

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))

import prunedet  # noqa: E402,F401
import torch_pruning as tp  # noqa: E402
from mmpretrain.registry import MODELS  # noqa: E402
from prunedet.criteria import GradientNorm  # noqa: E402
from prunedet.deploy.latency import (TABLE_HEADER, format_rows,  # noqa: E402
                                     latency_rows, node_times)
from prunedet.pruning.flops import FlopsEstimate, measure_flops  # noqa: E402
from prunedet.pruning.groups import ChannelGraph  # noqa: E402
from prunedet.pruning.phases import PHASES  # noqa: E402
from prunedet.pruning.pruner import ChannelPruner  # noqa: E402
from prunedet.pruning.tracing import tensor_forward  # noqa: E402

MODELS_CFG = {
    'vgg19':
    dict(
        type='ImageClassifier',
        backbone=dict(
            type='VGG', depth=19, norm_cfg=dict(type='BN'),
            out_indices=(4, )),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=10, in_channels=512)),
    'resnet56':
    dict(
        type='ImageClassifier',
        backbone=dict(type='CIFARResNet', depth=56),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=10, in_channels=64)),
}


GOAL = 0.05  # prune event / training step


def timed(fn, repeats):
    """Median wall time of ``fn()`` over ``repeats`` runs (after one)."""
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def setup(name, batch):
    model = MODELS.build(MODELS_CFG[name])
    x = torch.randn(batch, 3, 32, 32)
    y = torch.randint(0, 10, (batch, ))
    optimizer = torch.optim.SGD(
        model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    return model, x, y, optimizer


def train_step(model, x, y, optimizer):
    """As mmengine's ``OptimWrapper.update_params``: the gradients are
    freed after the step, so a prune event (after an iteration) finds none
    to cut."""
    loss = torch.nn.functional.cross_entropy(model(x, mode='tensor'), y)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()


def commit_before_steps(optimizer, pruner):
    """The criterion's statistics committed before every optimizer step,
    as the hook commits them; the hook's handle."""

    def commit(*_):
        pruner.criterion.commit(pruner.groups)

    return optimizer.register_step_pre_hook(commit)


def prune_events(name, model, x, y, optimizer, pruner, ratio, events,
                 between=2):
    """``events`` hard-prune events that take ``model`` progressively to
    ``ratio`` (as the hook does in training: ``between`` training steps
    before each, so the optimizer holds momentum and the criterion has
    scores), each timed beside one step of Torch-Pruning's ``MetaPruner``
    (``iterative_steps=events``) on an identical fresh model without
    optimizer state. Returns the seconds of ours (``ours``) and of
    Torch-Pruning's events (``tp``), each of ours by phase (``phases``) and
    Torch-Pruning's pruned model (``tp_model``)."""
    ref, rx, _, _ = setup(name, len(x))
    tp_pruner = tp.pruner.MetaPruner(
        ref,
        rx[:2],
        importance=tp.importance.GroupMagnitudeImportance(p=1),
        pruning_ratio=ratio,
        iterative_steps=events,
        forward_fn=tensor_forward,
        ignored_layers=[ref.head.fc])
    ours, theirs, phases = [], [], []

    def prune(k):
        timings = {}
        t = time.perf_counter()
        result = pruner.step(ratio * k / events, last=k == events,
                             optimizers=[optimizer], timings=timings)
        ours.append(time.perf_counter() - t)
        phases.append(timings)
        if result.postponed:
            raise RuntimeError(f'prune event {k} postponed: '
                               f'{result.postponed}')

    def tp_prune(k):
        t = time.perf_counter()
        tp_pruner.step()
        theirs.append(time.perf_counter() - t)

    handle = commit_before_steps(optimizer, pruner)
    try:
        for k in range(1, events + 1):
            for _ in range(between):
                train_step(model, x, y, optimizer)
            # alternate who goes first: neither always meets warm caches
            for event in ((prune, tp_prune) if k % 2 else (tp_prune, prune)):
                event(k)
    finally:
        handle.remove()
    return dict(ours=ours, tp=theirs, phases=phases, tp_model=ref)


def benchmark(name, batch, repeats, ratio, round_to, events=5, between=2,
              profile=False):
    model, x, y, optimizer = setup(name, batch)
    model.train()
    graph = ChannelGraph(model, x[:2], tensor_forward, ['backbone'])
    total, per_layer = measure_flops(model, x[:1], tensor_forward)
    crit = GradientNorm()
    pruner = ChannelPruner(
        graph,
        crit,
        target='flops',
        soft_steps=0,
        round_to=round_to,
        flops=FlopsEstimate(total, per_layer, graph.groups()))

    def step():
        train_step(model, x, y, optimizer)

    plain = timed(step, repeats)
    handle = commit_before_steps(optimizer, pruner)
    with_crit = timed(step, repeats)
    handle.remove()
    # criterion time alone, on the last step's gradients
    optimizer.zero_grad()
    torch.nn.functional.cross_entropy(model(x, mode='tensor'), y).backward()
    update = timed(lambda: crit.measure(pruner.groups), repeats)
    optimizer.zero_grad()

    events_s = prune_events(name, model, x, y, optimizer, pruner, ratio,
                            events, between)
    ours, theirs, phases = (events_s[k] for k in ('ours', 'tp', 'phases'))
    after = timed(step, repeats)  # training goes on, with the momentum

    # inference latency, pruned versus a fresh unpruned model, per runtime
    pruned_flops, _ = measure_flops(model, x[:1], tensor_forward)
    full = setup(name, 1)[0]
    model.eval(), full.eval()
    with tempfile.TemporaryDirectory() as tmp:
        runtimes = {
            b: latency_rows(model, full, torch.randn(b, 3, 32, 32),
                            pruned_flops / total, tmp,
                            repeats=repeats * (8 if b == 1 else 1))
            for b in (1, 32)
        }
        nodes = node_profile(model, full, tmp) if profile else None
    return dict(
        runtimes=runtimes,
        nodes=nodes,
        model=name,
        train_step_s=plain,
        criterion_overhead=(with_crit - plain) / plain,
        criterion_update_ratio=update / plain,
        prune_event_s=statistics.median(ours),
        prune_event_ratio=statistics.median(ours) / plain,
        prune_events_s=ours,
        prune_phases_s={
            p: statistics.median(t.get(p, 0.) for t in phases)
            for p in PHASES if any(p in t for t in phases)
        },
        tp_prune_s=statistics.median(theirs),
        tp_prune_ratio=statistics.median(theirs) / plain,
        tp_events_s=theirs,
        step_after_prune_s=after,
        flops_ratio=pruned_flops / total,
        latency_ratio=runtimes[1][0]['latency_ratio'],
        latency_ratio_b32=runtimes[32][0]['latency_ratio'],
    )


def node_profile(pruned, full, workdir, runs=300):
    """``(nodes, ops)`` at batch 1 in onnxruntime: ``[(node, op, unpruned
    us, pruned us)]`` for the nodes both networks name alike (in the
    unpruned network's order; the exporter numbers a few nodes by position,
    and those differ), and the same summed per op type over all nodes.
    Profiled one after the other: the breakdown says where the time goes;
    the ratio is the timing above."""
    x = torch.randn(1, 3, 32, 32)
    cut, whole = (node_times(m, x, workdir, runs) for m in (pruned, full))
    nodes = [(n, op, us, cut[n][1]) for n, (op, us) in whole.items()
             if n in cut and n != '(run)']
    ops = {}
    for side, times in enumerate((whole, cut)):
        for op, us in times.values():
            ops.setdefault(op, [0., 0.])[side] += us
    return nodes, [(op, f, c) for op, (f, c) in ops.items()]


def format_profile(model, profile):
    """Per node, then per op type: unpruned and pruned us, their ratio."""
    nodes, ops = profile
    rows = nodes + [(f'all {op}', op, f, c) for op, f, c in ops]
    return [f'{model} | {n} | {op} | {f:.1f} | {c:.1f} | '
            f'{c / f if f else float("nan"):.3f}' for n, op, f, c in rows]


def spread(times, step):
    """``median (min-max)`` of ``times`` as shares of a training step."""
    return (f'{statistics.median(times) / step:.3f} '
            f'({min(times) / step:.3f}-{max(times) / step:.3f})')


def meets_goal(row):
    """Issue 18's goal for the prune event: no slower than Torch-Pruning's
    own step, and at most ``GOAL`` of a training step (medians)."""
    return row['prune_event_ratio'] <= min(row['tp_prune_ratio'], GOAL)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--batch', type=int, default=128)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--ratio', type=float, default=0.5,
                        help='FLOPs share removed by the hard-prune event')
    parser.add_argument('--round-to', type=int, default=1,
                        help='round kept channels to a multiple of this')
    parser.add_argument('--events', type=int, default=5,
                        help='progressive hard-prune events to the ratio')
    parser.add_argument('--profile', action='store_true',
                        help="onnxruntime's batch-1 time per node, pruned "
                        'against unpruned')
    parser.add_argument('--models', nargs='+', default=list(MODELS_CFG))
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads, '
          f'batch {args.batch}, CIFAR 32x32, CPU')
    rows = [
        benchmark(m, args.batch, args.repeats, args.ratio, args.round_to,
                  args.events, profile=args.profile) for m in args.models
    ]
    header = ('model', 'train step', 'criterion/step', 'prune/step (median)',
              'TP prune/step', 'FLOPs ratio', 'latency ratio b1 (b32)',
              'lat/FLOPs b1')
    print(' | '.join(header))
    for r in rows:
        print(' | '.join([
            r['model'], f'{r["train_step_s"] * 1e3:.0f} ms',
            f'{r["criterion_update_ratio"]:.3f} '
            f'({r["criterion_overhead"]:+.3f} measured)',
            f'{r["prune_event_ratio"]:.3f} ({r["prune_event_s"] * 1e3:.0f} '
            'ms)', f'{r["tp_prune_ratio"]:.3f}', f'{r["flops_ratio"]:.3f}',
            f'{r["latency_ratio"]:.3f} ({r["latency_ratio_b32"]:.3f})',
            f'{r["latency_ratio"] / r["flops_ratio"]:.3f}'
        ]))
    print(f'\nprune events: {args.events} per model to the ratio, ours '
          'beside Torch-Pruning\'s, alternating which goes first; '
          '/step: median (min-max) over a training step, then each event '
          'in ms')
    print('model | prune/step | TP prune/step | events, ms | TP events, ms '
          f'| goal (median <= TP\'s and <= {GOAL})')
    for r in rows:
        print(' | '.join([
            r['model'],
            spread(r['prune_events_s'], r['train_step_s']),
            spread(r['tp_events_s'], r['train_step_s']),
            ' '.join(f'{t * 1e3:.0f}' for t in r['prune_events_s']),
            ' '.join(f'{t * 1e3:.0f}' for t in r['tp_events_s']),
            'met' if meets_goal(r) else 'not met'
        ]))
    print('\nprune event by phase, median ms (scoring: criterion; planning: '
          'channels per group; soft: selection state; graph: the groups to '
          'cut; surgery: weights; optimizer: its state; attributes: channel '
          'counts outside the layers; regroup: the new groups)')
    print(' | '.join(('model', ) + PHASES + ('other', 'event', 'TP step')))
    for r in rows:
        phases = r['prune_phases_s']
        other = r['prune_event_s'] - sum(phases.values())
        times = [phases.get(p, 0.) for p in PHASES] + [
            other, r['prune_event_s'], r['tp_prune_s']]
        print(' | '.join([r['model']] + [f'{t * 1e3:.1f}' for t in times]))
    print('\ninference per runtime (eager: as trained; folded: BN folded; '
          'torchscript: folded, frozen, optimised for inference)')
    print(TABLE_HEADER)
    for r in rows:
        for batch, lines in r['runtimes'].items():
            print('\n'.join(format_rows(r['model'], batch, lines)))
    if args.profile:
        print('\nonnxruntime, batch 1, per node (after its graph '
              'optimisations: a conv with its ReLU is one node, named after '
              'its output), us per run')
        print('model | node | op | unpruned | pruned | ratio')
        for r in rows:
            print('\n'.join(format_profile(r['model'], r['nodes'])))
    return rows


if __name__ == '__main__':
    main()
