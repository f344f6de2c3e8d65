"""Where a training iteration of the demo detector spends its time, unpruned
against pruned (the backbone cut to ~70% of the FLOPs), per phase and per
kind of operator, from ``torch.profiler``.

Pruning shrinks the backbone's convolutions; this shows what does not
shrink with them (data loading, the RPN and RoI heads, NMS, BN/ReLU memory
traffic, the optimizer, allocation and per-op overhead).

    python tools/analysis/profile_training.py [--iters 5] [--ratio 0.3]
"""
import argparse
import os.path as osp
import re
import sys
import tempfile
from collections import defaultdict

import torch
from torch.profiler import ProfilerActivity, profile, record_function

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

from mmengine.registry import DefaultScope  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

from prunedet.criteria import L1Norm  # noqa: E402
from prunedet.datasets.synthetic_voc import write_shapes_voc  # noqa: E402
from prunedet.models.detectors import two_stage_forward  # noqa: E402
from prunedet.pruning.flops import FlopsEstimate, measure_flops  # noqa: E402
from prunedet.pruning.groups import ChannelGraph  # noqa: E402
from prunedet.pruning.pruner import ChannelPruner  # noqa: E402
from prunedet.utils.config import load_config  # noqa: E402

DEMO = osp.join(ROOT, 'configs', 'demo', 'faster_rcnn_vgg16_shapes.py')
# operator name patterns -> kind, first match wins
KINDS = [
    ('convolution', r'conv|mkldnn_convolution'),
    ('batch norm', r'batch_norm'),
    ('RoIAlign', r'roi_align|RoIAlign'),
    ('NMS', r'nms'),
    ('linear (fc6/fc7, heads)', r'addmm|aten::mm$|aten::linear|matmul'),
    ('pooling', r'pool'),
    ('ReLU / elementwise', r'relu|threshold|aten::(add|mul|sub|div|neg|'
     r'exp|log|sigmoid|clamp|where|abs|sqrt|pow|max|min)'),
    ('copies / allocation', r'copy|empty|zero|fill|clone|contiguous|cat|'
     r'stack|index|to$|_to_copy|resize|view|reshape|permute|transpose|'
     r'expand|select|slice|split|narrow|t$'),
    ('optimizer', r'Optimizer|_foreach|sgd'),
]
PHASES = ('data', 'forward + loss', 'backward', 'optimizer step')


def kind(name: str) -> str:
    for label, pattern in KINDS:
        if re.search(pattern, name, re.I):
            return label
    return 'other'


def build(data_root, work_dir):
    cfg = load_config(DEMO, work_dir=work_dir, data_root=data_root)
    cfg.merge_from_dict({'train_dataloader.num_workers': 0,
                         'train_dataloader.persistent_workers': False})
    runner = Runner.from_cfg(cfg)
    return runner, runner.build_dataloader(cfg.train_dataloader)


def prune(model, ratio, round_to=1):
    """Cut every backbone conv alike until ``ratio`` of the FLOPs go."""
    x = torch.zeros(1, 3, 256, 256)
    graph = ChannelGraph(model, x, two_stage_forward, ['backbone'])
    total, per_layer = measure_flops(model, x, two_stage_forward)
    pruner = ChannelPruner(graph, L1Norm(), target='flops',
                           round_to=round_to,
                           flops=FlopsEstimate(total, per_layer,
                                               graph.groups()))
    pruner.step(ratio, last=True)
    return measure_flops(model, x, two_stage_forward)[0] / total


def profile_iters(runner, loader, iters):
    """Per phase and per operator kind: ms per iteration."""
    model, wrapper = runner.model, runner.optim_wrapper
    model.train()
    batches = iter(loader)

    def one():
        with record_function('data'):
            data = model.data_preprocessor(next(batches), True)
        with record_function('forward + loss'):
            loss, _ = model.parse_losses(model(**data, mode='loss'))
        with record_function('backward'):
            wrapper.backward(loss)
        with record_function('optimizer step'):
            wrapper.step()
            wrapper.zero_grad()

    for _ in range(2):
        one()  # warm-up: allocator, oneDNN primitives
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(iters):
            one()
    phases, kinds = {}, defaultdict(float)
    for event in prof.key_averages():
        if event.key in PHASES:
            phases[event.key] = event.cpu_time_total / 1e3 / iters
        elif not event.key.startswith('ProfilerStep'):
            kinds[kind(event.key)] += event.self_cpu_time_total / 1e3 / iters
    return phases, dict(kinds)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--iters', type=int, default=5)
    parser.add_argument('--ratio', type=float, default=0.3,
                        help='share of the FLOPs cut from the backbone')
    parser.add_argument('--round-to', type=int, default=1,
                        help='kept channels rounded to a multiple of this')
    parser.add_argument('--channels-last', action='store_true',
                        help='train both models in NHWC memory format')
    args = parser.parse_args(argv)
    tmp = tempfile.mkdtemp(prefix='prunedet_profile_')
    data_root = write_shapes_voc(osp.join(tmp, 'shapes'), 64, 4)
    results = {}
    for name in ('unpruned', 'pruned'):
        runner, loader = build(data_root, osp.join(tmp, name))
        with DefaultScope.overwrite_default_scope('mmdet'):
            flops = prune(runner.model, args.ratio, args.round_to) \
                if name == 'pruned' else 1.
            if args.channels_last:
                runner.model.to(memory_format=torch.channels_last)
            runner.optim_wrapper = runner.build_optim_wrapper(
                runner.optim_wrapper)
            results[name] = profile_iters(runner, loader, args.iters)
    print(f'demo detector training iteration (batch 4, 256x256), torch '
          f'{torch.__version__}, {torch.get_num_threads()} threads; pruned '
          f'model at {flops:.3f} of the FLOPs')
    print('\n| phase | unpruned ms | pruned ms | ratio |\n|---|---|---|---|')
    for phase in PHASES:
        a, b = (results[n][0].get(phase, 0.) for n in ('unpruned', 'pruned'))
        print(f'| {phase} | {a:.1f} | {b:.1f} | {b / a if a else 0:.3f} |')
    total = [sum(results[n][0].values()) for n in ('unpruned', 'pruned')]
    print(f'| iteration | {total[0]:.1f} | {total[1]:.1f} | '
          f'{total[1] / total[0]:.3f} |')
    print('\n| operators (self time) | unpruned ms | pruned ms | ratio | '
          'share of unpruned |\n|---|---|---|---|---|')
    kinds = results['unpruned'][1]
    for label in sorted(kinds, key=kinds.get, reverse=True):
        a, b = kinds[label], results['pruned'][1].get(label, 0.)
        print(f'| {label} | {a:.1f} | {b:.1f} | {b / a if a else 0:.3f} | '
              f'{a / sum(kinds.values()):.1%} |')
    return results


if __name__ == '__main__':
    main()
