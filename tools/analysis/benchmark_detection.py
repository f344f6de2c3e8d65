"""RPGP versus unpruned Faster R-CNN VGG16, measured side by side in one run.

1. whole-training time of each RPGP schedule / the unpruned config, same
   iterations and data (the seed reports 281/428 = 0.66 on a GPU), with the
   mAP each reaches; each run is timed twice, in the order unpruned,
   schedules, schedules reversed, unpruned (``--no-abba``: once); ``--schedules`` names variants of the demo's RPGP
   (``default``: geometric ramp to iteration 45, every 5 iterations;
   ``late``: geometric to iteration 180, every 20; ``early``: geometric
   to iteration 90, every 10; ``front``: exponential, three quarters of
   the cut by iteration 23, all of it by 90; ``latency``: the default's
   timing towards 22% less batch-1 eager latency instead of FLOPs);
2. pruned / unpruned inference latency per runtime (eager, channels_last,
   BN folded, TorchScript, onnxruntime) next to the FLOPs ratio, for the
   trained models at the demo's size;
3. with ``--voc-size``, the training time where the paper measured it:
   training steps (forward with losses, backward, optimizer step, batch 1)
   of the full-width VGG16 Faster R-CNN at VOC's 600x1000, unpruned and at
   each width the first schedule passes through (the demo run's per-layer
   removed shares after each prune event, scaled by one factor so that the
   last widths keep ``--voc-flops`` of the FLOPs at 600x1000), integrated
   over the schedule's iterations into a predicted whole-training ratio
   (one synthetic batch: there is no VOC data here, and a batch-1 fetch is
   small beside a 600x1000 step). The method is checked on the demo
   itself: its iterations (fetch and step) timed at each of its widths,
   integrated the same way, against its measured whole-run ratio. The
   widths are timed in ``--rounds``, each in a new order; each round's own
   prediction is printed beside the median's.

    python tools/analysis/benchmark_detection.py [--iters 300] [--voc-size]
        [--voc-flops 0.70] [--step-repeats 3] [--rounds 3] [--no-abba]
"""
import argparse
import math
import os.path as osp
import random
import statistics
import sys
import tempfile
import time
from itertools import repeat

import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

import prunedet  # noqa: E402,F401
from mmdet.registry import MODELS  # noqa: E402
from mmdet.structures import DetDataSample  # noqa: E402
from mmengine.optim import build_optim_wrapper  # noqa: E402
from mmengine.structures import InstanceData  # noqa: E402
from mmengine.runner import Runner  # noqa: E402
from prunedet.datasets.synthetic_voc import write_shapes_voc  # noqa: E402
from prunedet.deploy.latency import (TABLE_HEADER, format_rows,  # noqa: E402
                                     latency_rows, median_times)
from prunedet.models.detectors import two_stage_forward  # noqa: E402
from prunedet.pruning.flops import measure_flops  # noqa: E402
from prunedet.pruning.groups import ChannelGraph  # noqa: E402
from prunedet.pruning.surgery import remove_channels  # noqa: E402
from prunedet.utils.config import load_config  # noqa: E402

DEMO = osp.join(ROOT, 'configs', 'demo', 'faster_rcnn_vgg16_shapes{}.py')
SCHEDULES = {  # hook options over the demo's RPGP (interval 5, end 0.15)
    # at the final widths an iteration costs 0.785 of an unpruned one
    # (RoIAlign and NMS do not shrink with the backbone), so a whole run
    # only gets near 0.8 if the cut is done in its first sixth
    'default': {},
    'late': dict(end=0.6, interval=20),  # the default before
    'early': dict(end=0.3, interval=10),
    'front': dict(end=0.3, interval=10, ramp='exponential'),
    # the default's timing, planned on the per-layer latency table (eager,
    # batch 1) instead of FLOPs: the cut goes where the time is
    'latency': dict(target='latency', runtime='eager', target_ratio=0.22),
}


def train(suffix: str, data_root: str, work_dir: str, iters: int,
          schedule: dict = None):
    """Train the demo (or an RPGP schedule of it); seconds of
    ``runner.train()`` without validation, and the runner."""
    cfg = load_config(
        DEMO.format(suffix), work_dir=work_dir, data_root=data_root)
    cfg.merge_from_dict({
        'train_cfg.max_iters': iters,
        'train_cfg.val_interval': iters + 1,  # validated after timing
        'default_hooks.checkpoint.interval': iters,
        'default_hooks.logger.interval': 50,
        'experiment_name': f'bench{suffix}_{time.time()}',
    })
    cfg.param_scheduler[1].milestones = [int(iters * 0.8)]
    if cfg.get('custom_hooks'):
        cfg.custom_hooks[0].update(schedule or {})
    runner = Runner.from_cfg(cfg)
    hook = pruning_hook(runner)
    if hook is not None:
        record_events(hook)
    t = time.perf_counter()
    runner.train()
    seconds = time.perf_counter() - t
    return seconds, runner


def pruning_hook(runner):
    return next((h for h in runner.hooks
                 if type(h).__name__ == 'ProgressivePruningHook'), None)


def record_events(hook) -> None:
    """Make ``hook`` note, after each prune event, the iteration and the
    physical widths ``{group: (kept, original)}`` the model trains at from
    the next iteration on (``hook.events``), and the seconds its graph build
    and prune events took (``hook.event_seconds``)."""
    hook.events, hook.event_seconds = [], 0.
    build, prune = hook._build, hook._prune_step

    def timed_build(runner, data_batch):
        t = time.perf_counter()
        build(runner, data_batch)
        hook.event_seconds += time.perf_counter() - t

    def timed_prune(runner, done):
        t = time.perf_counter()
        prune(runner, done)
        hook.event_seconds += time.perf_counter() - t
        hook.events.append(
            (done, {n: tuple(c) for n, c in hook.pruner.channels().items()}))

    hook._build, hook._prune_step = timed_build, timed_prune


def schedule_segments(events, iters: int, full):
    """Iterations trained at each width: ``events`` are ``(done, widths)``
    (after iteration ``done`` the model has ``widths``), ``full`` the widths
    before the first event; equal widths are grouped. Returns
    ``{widths: iterations}`` summing to ``iters``."""
    counts, start, widths = {}, 0, full
    for done, new in sorted(events, key=lambda e: e[0]) + [(iters, None)]:
        done = min(done, iters)
        if done > start:
            counts[widths] = counts.get(widths, 0) + done - start
            start = done
        widths = new
    return counts


def integrate(counts, step_seconds, full) -> float:
    """Predicted whole-training ratio: the seconds of training at each
    width for its iterations, over as many iterations at ``full``."""
    total = sum(n * step_seconds[w] for w, n in counts.items())
    return total / (sum(counts.values()) * step_seconds[full])


def width_key(channels: dict) -> tuple:
    """Hashable widths: ``((group, kept), ...)`` in group order."""
    return tuple((name, int(c[0])) for name, c in channels.items())


def shrink(model, widths: dict, x: torch.Tensor):
    """Cut each backbone group of ``model`` to ``widths[name]`` channels
    (the first ones go: which ones does not change the time)."""
    graph = ChannelGraph(model, x, two_stage_forward, ['backbone'])
    groups = graph.groups()
    missing = {g.name for g in groups} ^ set(widths)
    if missing:
        raise KeyError(f'groups that do not match the demo: {missing}')
    for group in groups:
        cut = group.num_channels - widths[group.name]
        if cut > 0:
            remove_channels(graph, group, range(cut))
    return model


def step_times(build, batches, optim_cfg, repeats: int) -> list:
    """Median seconds of a training iteration of each model ``build()``
    returns (a list of callables), timed one model at a time as training
    runs them (each step finds the model's weights and kernels warm;
    memory: a full VGG16 detector at 600x1000): the next batch of
    ``batches`` (an endless iterator: for the demo, a run's own dataloader,
    whose workers share the cores with the step as in training) and the
    training step (``model.train_step``: forward with losses, backward,
    optimizer step)."""
    result = []
    for make in build:
        model = make().train()
        wrapper = build_optim_wrapper(model, optim_cfg)
        for _ in range(2):  # warm-up: momentum buffers, memory
            model.train_step(next(batches), wrapper)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            model.train_step(next(batches), wrapper)  # fetch included
            times.append(time.perf_counter() - t)
        result.append(statistics.median(times))
        del model, wrapper
    return result


def endless(loader):
    """The batches of ``loader``, epoch after epoch, as a training loop
    draws them."""
    while True:
        yield from loader


def voc_batch():
    """One synthetic 600x1000 image with two ground-truth boxes."""
    h, w = 600, 1000
    sample = DetDataSample(metainfo=dict(
        img_shape=(h, w), ori_shape=(h, w), scale_factor=(1., 1.),
        flip=False, img_id=0))
    sample.gt_instances = InstanceData(
        bboxes=torch.tensor([[120., 80., 420., 500.], [560., 150., 940.,
                                                         560.]]),
        labels=torch.tensor([3, 11]))
    sample.ignored_instances = InstanceData(
        bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))
    g = torch.Generator().manual_seed(0)
    image = torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g)
    return dict(inputs=[image], data_samples=[sample])


def flops(model, inputs):
    return measure_flops(model, inputs, two_stage_forward)[0]


def widths_timed(make, keys, full_key, batches, optim_cfg, repeats,
                 rounds):
    """Training-step seconds at each width of ``keys`` (the full width
    among them), per round: ``{key: [seconds in round 1, ...]}``. Each
    model is built and timed alone, as training runs it (a full VGG16
    detector at 600x1000 takes gigabytes), and the widths are timed in
    ``rounds``, each in a new seeded order, so that a machine that drifts
    during the timing hits every width alike: timed once in a fixed order,
    the full width measured 0.80 (VOC size) and 0.61 (demo) of itself
    before and after the others. The first model a process times ran up to
    1.25 times slower than the same model later: the full width is timed
    once, untimed, first."""
    step_times([make(full_key)], batches, optim_cfg, 1)
    order, seconds = random.Random(0), {k: [] for k in keys}
    for _ in range(rounds):
        turn = list(keys)
        order.shuffle(turn)
        times = step_times([make(k) for k in turn], batches, optim_cfg,
                           repeats)
        for key, t in zip(turn, times):
            seconds[key].append(t)
    return seconds


def predictions(counts, per_round, full_key):
    """The whole-training ratio from each round's step times alone, and
    from the median step time at each width over the rounds (the
    prediction; the rounds' spread says how far the machine moved it)."""
    rounds = range(len(per_round[full_key]))
    each = [integrate(counts, {k: t[r] for k, t in per_round.items()},
                      full_key) for r in rounds]
    medians = {k: statistics.median(t) for k, t in per_round.items()}
    return integrate(counts, medians, full_key), each, medians


def reliable(each, predicted, within=0.03) -> bool:
    """Every round's prediction within ``within`` of the prediction."""
    return all(abs(p - predicted) <= within for p in each)


def scaled_widths(originals, fractions, key, scale: float,
                  round_to: int = 8) -> dict:
    """VOC-size widths for the demo widths ``key``: each conv loses
    ``scale`` times the share of channels its demo counterpart lost (the
    schedule's per-layer shape, scaled by one factor), in multiples of
    ``round_to`` as the detection configs keep them."""
    widths = {}
    for (name, orig), (_, kept), (_, demo) in zip(originals, key, fractions):
        keep = orig * (1 - scale * (1 - kept / demo))
        widths[name] = orig if keep >= orig else min(orig, max(
            round_to, round_to * math.floor(keep / round_to + 0.5)))
    return widths


def fit_scale(flops_ratio_at, target: float, steps: int = 12,
              within: float = 0.002) -> float:
    """The scale of the demo's removed shares at which the final widths keep
    ``target`` of the FLOPs: bisection (the FLOPs fall as the scale grows),
    then the scale measured closest to the target (widths are whole
    multiples, so the target is hit only to a step)."""
    if not 0 < target < 1:
        raise ValueError(f'a FLOPs ratio in (0, 1), not {target}')
    lo, hi = 0., 2.
    tried = {lo: 1., hi: flops_ratio_at(hi)}  # scale 0: nothing cut
    if tried[hi] > target:
        raise ValueError(f'twice the demo\'s cut keeps {tried[hi]:.3f} of '
                         f'the FLOPs: a FLOPs ratio of {target} is out of '
                         'reach')
    for _ in range(steps):
        mid = (lo + hi) / 2
        tried[mid] = flops_ratio_at(mid)
        if abs(tried[mid] - target) <= within:
            break
        lo, hi = (mid, hi) if tried[mid] > target else (lo, mid)
    return min(tried, key=lambda s: abs(tried[s] - target))


def voc_size(counts, full_key, fractions, repeats, rounds,
             flops_target=None):
    """Full VGG16 Faster R-CNN at 600x1000: the training step at each width
    of the schedule (``counts``: demo widths -> iterations), integrated into
    a predicted whole-training ratio, and the FLOPs ratio at the end. Each
    conv loses the share of channels its counterpart lost in the trained
    demo model, scaled by one factor so that the final widths keep
    ``flops_target`` of the FLOPs (the same backbone fractions cost a
    different share of the FLOPs at 600x1000, where the RoI head weighs
    less); ``None``: the demo's shares as they are."""
    cfg = load_config(osp.join(ROOT, 'configs', 'faster_rcnn_vgg16_voc.py'))
    trace = torch.randn(2, 3, 224, 224)  # the graph does not need 600x1000
    probe = MODELS.build(cfg.model)
    originals = [(g.name, g.num_channels) for g in ChannelGraph(
        probe, trace, two_stage_forward, ['backbone']).groups()]
    del probe
    if len(originals) != len(fractions):  # the demo has BN: other names
        raise ValueError(f'{len(originals)} VOC-size conv groups, '
                         f'{len(fractions)} in the demo')
    x = torch.randn(1, 3, 600, 1000)
    full_flops = flops(MODELS.build(cfg.model), x)
    final = min(counts, key=lambda k: sum(kept for _, kept in k))
    measured = {}

    def flops_ratio_at(scale):
        widths = scaled_widths(originals, fractions, final, scale)
        key = tuple(widths.values())
        if key not in measured:
            model = shrink(MODELS.build(cfg.model), widths, trace)
            measured[key] = flops(model, x) / full_flops
        return measured[key]

    scale = 1. if flops_target is None else fit_scale(flops_ratio_at,
                                                      flops_target)
    keys = list(counts)
    if full_key not in keys:
        keys.insert(0, full_key)
    widths = {k: scaled_widths(originals, fractions, k, scale) for k in keys}

    def make(key):
        return lambda: shrink(MODELS.build(cfg.model), widths[key], trace)

    per_round = widths_timed(make, keys, full_key, repeat(voc_batch()),
                             cfg.optim_wrapper, repeats, rounds)
    ratio, each, seconds = predictions(counts, per_round, full_key)
    return dict(ratio=ratio, rounds=each, seconds=seconds, widths=widths,
                flops=flops_ratio_at(scale), scale=scale, final=final,
                per_round=per_round)


def iteration_seconds(runner) -> list:
    """Seconds of each training iteration of ``runner``'s run, as mmengine's
    ``IterTimerHook`` measured them (data, step, hooks and prune events)."""
    return list(runner.message_hub.get_scalar('train/time').data[0])


def each(times) -> str:
    """`` (t1, t2)`` when a run was timed more than once."""
    return '' if len(times) < 2 else \
        ' (' + ', '.join(f'{t:.1f}' for t in times) + ')'


def outside(seconds, runner) -> float:
    """Seconds of a run spent outside its iterations (building, the first
    iteration's set-up, the last checkpoint)."""
    return seconds - sum(iteration_seconds(runner))


def in_run_seconds(counts_events, times, full_key) -> dict:
    """Median in-run iteration time at each width: ``counts_events`` are
    the hook's ``(done, key)`` events, ``times`` the run's iteration times
    (a median, so an iteration with a prune event does not count)."""
    by_width, start, key = {}, 0, full_key
    for done, new in sorted(counts_events, key=lambda e: e[0]) + [
            (len(times), None)]:
        by_width.setdefault(key, []).extend(times[start:done])
        start, key = max(start, done), new
    return {k: statistics.median(v) for k, v in by_width.items() if v}


def demo_check(rpgp, base, t_rpgp, t_base, iters, repeats, rounds):
    """The method on the demo: its training step timed at each width its
    schedule passed through, integrated over the schedule, against the
    measured whole-run ratio. Besides the iterations timed, a run spends a
    per-iteration overhead (hooks, logging: the unpruned run's time per
    iteration minus its timed one) and the hook's own build and prune
    events (timed in the run); the prediction adds both. Iterations are
    timed one width at a time, as training runs them, on batches drawn
    from the unpruned run's dataloader (:func:`widths_timed`; the fetch and
    its workers' share of the cores are in the timing); the runs' own
    iteration times at each width are reported beside them."""
    hook = pruning_hook(rpgp)
    original = {n: (c[1], c[1]) for n, c in hook.pruner.channels().items()}
    full_key = width_key(original)
    events = [(done, width_key(c)) for done, c in hook.events]
    counts = schedule_segments(events, iters, full_key)
    cfg = base.cfg
    batches = endless(base.train_dataloader)
    trace = torch.randn(2, 3, 256, 256)
    keys = list(counts)
    if full_key not in keys:
        keys.insert(0, full_key)

    def make(key):
        return lambda: shrink(MODELS.build(cfg.model), dict(key), trace)

    per_round = widths_timed(make, keys, full_key, batches,
                             cfg.optim_wrapper, repeats, rounds)
    steps_only, _, seconds = predictions(counts, per_round, full_key)

    def predict(seconds):  # steps, overhead and events over the unpruned
        overhead = max(t_base / iters - seconds[full_key], 0.)
        return (sum(n * seconds[k] for k, n in counts.items()) +
                iters * overhead + hook.event_seconds) / (
                    iters * (seconds[full_key] + overhead)), overhead

    predicted, overhead = predict(seconds)
    each = [predict({k: t[r] for k, t in per_round.items()})[0]
            for r in range(rounds)]
    in_run = in_run_seconds(events, iteration_seconds(rpgp), full_key)
    in_run[full_key] = statistics.median(iteration_seconds(base))
    return dict(counts=counts, seconds=seconds, full=full_key,
                steps_only=steps_only, predicted=predicted, rounds=each,
                measured=t_rpgp / t_base, overhead=overhead,
                events=hook.event_seconds, original=original,
                in_run=in_run, per_round=per_round)


def span(times, scale=1.) -> str:
    """``min-max`` of one width's round times."""
    return f'{min(times) * scale:.{0 if scale > 1 else 2}f}-' \
        f'{max(times) * scale:.{0 if scale > 1 else 2}f}'


def said_by_rounds(each, predicted) -> str:
    """The rounds' own predictions, and whether they agree."""
    return ('each round alone: ' + ', '.join(f'{p:.3f}' for p in each) +
            ('' if reliable(each, predicted) else
             ': more than 0.03 apart from the prediction, the machine '
             'changed during the timing and the prediction is not '
             'reliable'))


def describe(key, original=None) -> str:
    """conv widths, compactly: 'kept/original' per group, or kept only."""
    return ' '.join(f'{k}' if original is None else
                    f'{k}/{original[n][1]}' for n, k in key)


def flops_ratio_or_demo(value: str):
    """``--voc-flops``: a FLOPs ratio in (0, 1), or 'demo' (``None``)."""
    if value == 'demo':
        return None
    try:
        ratio = float(value)
    except ValueError:
        ratio = None
    if ratio is None or not 0 < ratio < 1:
        raise argparse.ArgumentTypeError(
            f'a FLOPs ratio in (0, 1) or "demo", not {value!r}')
    return ratio


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--iters', type=int, default=300)
    parser.add_argument('--repeats', type=int, default=10)
    parser.add_argument('--data-root', help='default: generated shapes')
    parser.add_argument('--schedules', nargs='+', default=list(SCHEDULES),
                        choices=list(SCHEDULES))
    parser.add_argument(
        '--voc-size',
        action='store_true',
        help='also predict the whole-training ratio of the full-width '
        'detector at 600x1000 from its training steps at each width of '
        'the first schedule, checked on the demo (slow on CPU)')
    parser.add_argument(
        '--voc-flops',
        type=flops_ratio_or_demo,
        default=0.70,
        help='FLOPs ratio the VOC-size widths end at: every conv\'s removed '
        'share in the demo scaled by one factor (the demo\'s fractions keep '
        '0.728 at 600x1000); "demo": the demo\'s shares unscaled')
    parser.add_argument(
        '--demo-check', action='store_true',
        help='only the demo check of --voc-size\'s method: the first '
        'schedule\'s whole-run ratio predicted from its training steps')
    parser.add_argument(
        '--abba',
        action=argparse.BooleanOptionalAction,
        default=True,
        help='time every run twice, in the order unpruned, schedules, '
        'schedules reversed, unpruned, so that a machine whose speed drifts '
        'hits both sides alike (one run of each measured the same code '
        '0.766-0.810 in three tries)')
    parser.add_argument(
        '--step-repeats', type=int, default=3,
        help='timed training steps per width and round (after a warm-up)')
    parser.add_argument(
        '--rounds', type=int, default=3,
        help='rounds of step timing, each width once per round in a new '
        'order')
    args = parser.parse_args(argv)
    tmp = tempfile.mkdtemp(prefix='prunedet_bench_')
    data_root = args.data_root or write_shapes_voc(
        osp.join(tmp, 'shapes'), 400, 100)
    # untimed, a few iterations of each: the first run of a process pays
    # one-time costs (lazy imports and kernels, the dataset's parsing, the
    # allocator's first growth) that are not training; timed first, the
    # unpruned run spent 25 s outside its iterations, the RPGP run 14 s
    for suffix in ('', '_rpgp'):
        train(suffix, data_root, osp.join(tmp, 'warmup' + suffix), 5)
    t_base, base = train('', data_root, osp.join(tmp, 'base'), args.iters)
    runs, schedules, times = {}, {}, {'unpruned': [t_base]}
    for name in args.schedules:
        schedule = dict(SCHEDULES[name])
        if schedule.get('target') == 'latency':
            # the table is measured once per machine and model and cached:
            # built by a short run first, so that it is not timed as training
            schedule['latency_cache'] = osp.join(tmp, 'latency')
            t = time.perf_counter()
            train('_rpgp', data_root, osp.join(tmp, name + '_table'), 40,
                  schedule)
            print(f'{name}: latency table and 40 iterations '
                  f'{time.perf_counter() - t:.1f} s (not timed below)')
        runs[name] = train('_rpgp', data_root, osp.join(tmp, name),
                           args.iters, schedule)
        schedules[name], times[name] = schedule, [runs[name][0]]
    if args.abba:  # the same runs again, in the reverse order
        for name in reversed(args.schedules):
            times[name].append(train('_rpgp', data_root,
                                     osp.join(tmp, name + '_again'),
                                     args.iters, schedules[name])[0])
            runs[name] = (statistics.mean(times[name]), runs[name][1])
        times['unpruned'].append(train('', data_root,
                                       osp.join(tmp, 'base_again'),
                                       args.iters)[0])
        t_base = statistics.mean(times['unpruned'])
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads; '
          f'demo detector (VGG16 x0.25, 256x256), {args.iters} iterations '
          'of batch 4')
    print('schedule | FLOPs at end | training time | ratio to unpruned | '
          'outside iterations | mAP')
    print(f'unpruned | 1.000 | {t_base:.1f} s{each(times["unpruned"])} | '
          '1.000 | '
          f'{outside(times["unpruned"][0], base):.1f} s | '
          f'{base.val_loop.run()["pascal_voc/mAP"]:.4f}')
    for name, (seconds, runner) in runs.items():
        hook = next(h for h in runner.hooks
                    if type(h).__name__ == 'ProgressivePruningHook')
        print(f'{name} | {hook.flops_ratio:.3f} | {seconds:.1f} s'
              f'{each(times[name])} | {seconds / t_base:.3f} | '
              f'{outside(times[name][0], runner):.1f} s | '
              f'{runner.val_loop.run()["pascal_voc/mAP"]:.4f}')
    rpgp = runs[args.schedules[0]][1]
    # the steps are timed before the latency rows: onnxruntime's and
    # TorchScript's thread pools, once started, compete with them
    if args.voc_size or args.demo_check:
        seconds_rpgp = runs[args.schedules[0]][0]
        check = demo_check(rpgp, base, seconds_rpgp, t_base, args.iters,
                           args.step_repeats, args.rounds)
        counts, full = check['counts'], check['full']
        original = check['original']
        fractions = [(n, o) for n, (_, o) in original.items()]
        print(f'\nschedule {args.schedules[0]}: widths the demo trained at '
              '(kept/original per backbone conv, conv1_1..conv5_3)')
        print('iterations | widths | share of channels | demo iteration '
              '(rounds) | ratio to unpruned | in-run iteration (median) | '
              'ratio')
        total = sum(o for _, o in fractions)
        in_run = check['in_run']
        for key, n in counts.items():
            t, r = check['seconds'][key], in_run.get(key, float('nan'))
            print(f'{n} | {describe(key, original)} | '
                  f'{sum(k for _, k in key) / total:.3f} | '
                  f'{t * 1e3:.0f} ms ({span(check["per_round"][key], 1e3)}'
                  f') | {t / check["seconds"][full]:.3f} | '
                  f'{r * 1e3:.0f} ms | {r / in_run[full]:.3f}')
        print(f'full width: iteration {check["seconds"][full] * 1e3:.0f} ms '
              f'(median of {args.rounds} rounds); the unpruned run\'s median '
              f'iteration {in_run[full] * 1e3:.0f} ms')
        print(f'demo check ({args.iters} iterations): predicted from the '
              f'timed iterations alone {check["steps_only"]:.3f}; with the '
              f'unpruned run\'s per-iteration overhead '
              f'{check["overhead"] * 1e3:.0f} ms and the hook\'s events '
              f'{check["events"]:.1f} s: predicted {check["predicted"]:.3f}'
              f', measured {check["measured"]:.3f}, difference '
              f'{check["predicted"] - check["measured"]:+.3f}')
        print(said_by_rounds(check['rounds'], check['predicted']))
    if args.voc_size:
        voc = voc_size(counts, full, fractions, args.step_repeats,
                       args.rounds, args.voc_flops)
        seconds, widths = voc['seconds'], voc['widths']
        print('\nVOC size: full-width VGG16 Faster R-CNN at 600x1000, '
              'training step (forward with losses, backward, SGD), batch 1; '
              f'each conv loses {voc["scale"]:.3f} times the share of '
              'channels its demo counterpart lost')
        print('iterations | widths | step time (rounds) | ratio to unpruned')
        for key, t in seconds.items():
            print(f'{counts.get(key, 0)} | '
                  f'{" ".join(str(v) for v in widths[key].values())} | '
                  f'{t:.2f} s ({span(voc["per_round"][key])}) | '
                  f'{t / seconds[full]:.3f}')
        print(f'VOC size: predicted whole-training ratio {voc["ratio"]:.3f} '
              f'at FLOPs ratio {voc["flops"]:.3f} at the end (seed: 0.66 at '
              '0.70 on a GPU)')
        print(said_by_rounds(voc['rounds'], voc['ratio']))

    models = [r.model.eval() for r in (rpgp, base)]
    x = torch.randn(1, 3, 256, 256)
    flops_ratio = flops(models[0], x) / flops(models[1], x)
    print(f'\ninference of the {args.schedules[0]} RPGP model per runtime')
    print(TABLE_HEADER)
    rows = latency_rows(*models, x, flops_ratio, tmp,
                        repeats=args.repeats)
    print('\n'.join(format_rows('demo detector', 1, rows)))


if __name__ == '__main__':
    main()
