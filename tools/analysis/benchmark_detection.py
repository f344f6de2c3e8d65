"""RPGP versus unpruned Faster R-CNN VGG16, measured side by side in one run.

1. whole-training time of each RPGP schedule / the unpruned config, same
   iterations and data (the seed reports 281/428 = 0.66 on a GPU), with the
   mAP each reaches: ``--schedules`` names variants of the demo's RPGP
   (``default``: geometric ramp to iteration 180; ``early``: geometric to
   iteration 90; ``front``: exponential, three quarters of the cut by
   iteration 23, all of it by 90);
2. pruned / unpruned inference latency per runtime (eager, channels_last,
   BN folded, TorchScript, onnxruntime) next to the FLOPs ratio, for the
   trained models at the demo's size, and optionally (``--voc-size``) eager
   for the full-width VGG16 detector at VOC's 600x1000 with the same
   per-layer channel fractions.

    python tools/analysis/benchmark_detection.py [--iters 300] [--voc-size]
"""
import argparse
import os.path as osp
import sys
import tempfile
import time

import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

import prunedet  # noqa: E402,F401
from mmdet.registry import MODELS  # noqa: E402
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
SCHEDULES = {  # hook options over the demo's RPGP (interval 20, end 0.6)
    'default': {},
    'early': dict(end=0.3, interval=10),
    'front': dict(end=0.3, interval=10, ramp='exponential'),
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
    t = time.perf_counter()
    runner.train()
    seconds = time.perf_counter() - t
    return seconds, runner


def flops(model, inputs):
    return measure_flops(model, inputs, two_stage_forward)[0]


def voc_size(fractions, repeats):
    """Full VGG16 Faster R-CNN at 600x1000, each conv cut to the kept
    fraction of its counterpart in the trained demo model."""
    cfg = load_config(osp.join(ROOT, 'configs', 'faster_rcnn_vgg16_voc.py'))
    full, pruned = MODELS.build(cfg.model), MODELS.build(cfg.model)
    full.eval(), pruned.eval()
    x = torch.randn(1, 3, 600, 1000)
    graph = ChannelGraph(pruned, x, two_stage_forward, ['backbone'])
    for group, kept in zip(graph.groups(), fractions):  # conv1_1..conv5_3
        remove_channels(graph, group,
                        range(round(group.num_channels * (1 - kept))))
    ratio = flops(pruned, x) / flops(full, x)
    t_pruned, t_full = median_times(
        [lambda: two_stage_forward(m, x) for m in (pruned, full)], repeats)
    return ratio, t_pruned / t_full, t_full


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
        help='also time the full-width detector at 600x1000 (slow on CPU)')
    args = parser.parse_args(argv)
    tmp = tempfile.mkdtemp(prefix='prunedet_bench_')
    data_root = args.data_root or write_shapes_voc(
        osp.join(tmp, 'shapes'), 400, 100)
    t_base, base = train('', data_root, osp.join(tmp, 'base'), args.iters)
    runs = {
        name: train('_rpgp', data_root, osp.join(tmp, name), args.iters,
                    SCHEDULES[name])
        for name in args.schedules
    }
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads; '
          f'demo detector (VGG16 x0.25, 256x256), {args.iters} iterations '
          'of batch 4')
    print('schedule | FLOPs at end | training time | ratio to unpruned | mAP')
    print(f'unpruned | 1.000 | {t_base:.1f} s | 1.000 | '
          f'{base.val_loop.run()["pascal_voc/mAP"]:.4f}')
    for name, (seconds, runner) in runs.items():
        hook = next(h for h in runner.hooks
                    if type(h).__name__ == 'ProgressivePruningHook')
        print(f'{name} | {hook.flops_ratio:.3f} | {seconds:.1f} s | '
              f'{seconds / t_base:.3f} | '
              f'{runner.val_loop.run()["pascal_voc/mAP"]:.4f}')
    rpgp = runs[args.schedules[0]][1]
    models = [r.model.eval() for r in (rpgp, base)]
    x = torch.randn(1, 3, 256, 256)
    flops_ratio = flops(models[0], x) / flops(models[1], x)
    print(f'\ninference of the {args.schedules[0]} RPGP model per runtime')
    print(TABLE_HEADER)
    rows = latency_rows(*models, x, flops_ratio, tmp,
                        repeats=args.repeats)
    print('\n'.join(format_rows('demo detector', 1, rows)))
    if args.voc_size:
        hook = next(h for h in rpgp.hooks
                    if type(h).__name__ == 'ProgressivePruningHook')
        fractions = [k / o for k, o in hook.pruner.channels().values()]
        ratio, lat, t_full = voc_size(fractions, max(args.repeats // 3, 2))
        print(f'VOC size        full-width VGG16 at 600x1000: FLOPs ratio '
              f'{ratio:.3f}, latency ratio {lat:.3f} (unpruned '
              f'{t_full:.2f} s)')


if __name__ == '__main__':
    main()
