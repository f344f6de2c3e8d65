"""RPGP versus unpruned Faster R-CNN VGG16, measured side by side in one run.

1. whole-training time of the RPGP config / the unpruned config, same
   iterations and data (the seed reports 281/428 = 0.66 on a GPU);
2. pruned / unpruned inference latency next to the FLOPs ratio, for the two
   trained models at the demo's size, and optionally (``--voc-size``) for the
   full-width VGG16 detector at VOC's 600x1000 with the same per-layer channel
   fractions.

    python tools/analysis/benchmark_detection.py [--iters 300] [--voc-size]
"""
import argparse
import os.path as osp
import statistics
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
from prunedet.models.detectors import two_stage_forward  # noqa: E402
from prunedet.pruning.flops import measure_flops  # noqa: E402
from prunedet.pruning.groups import ChannelGraph  # noqa: E402
from prunedet.pruning.surgery import remove_channels  # noqa: E402
from prunedet.utils.config import load_config  # noqa: E402

DEMO = osp.join(ROOT, 'configs', 'demo', 'faster_rcnn_vgg16_shapes{}.py')


def train(suffix: str, data_root: str, work_dir: str, iters: int):
    cfg = load_config(
        DEMO.format(suffix), work_dir=work_dir, data_root=data_root)
    cfg.merge_from_dict({
        'train_cfg.max_iters': iters,
        'default_hooks.checkpoint.interval': iters,
        'default_hooks.logger.interval': 50,
        'experiment_name': f'bench{suffix}_{int(time.time())}',
    })
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None  # train only
    cfg.param_scheduler[1].milestones = [int(iters * 0.8)]
    if cfg.get('custom_hooks'):
        cfg.custom_hooks[0].interval = max(iters // 15, 1)
    runner = Runner.from_cfg(cfg)
    t = time.perf_counter()
    runner.train()
    return time.perf_counter() - t, runner


def latency(models, inputs, repeats):
    """Median forward time of each model, run alternately."""
    times = [[] for _ in models]
    with torch.no_grad():
        for _ in range(repeats + 1):
            for i, model in enumerate(models):
                t = time.perf_counter()
                two_stage_forward(model, inputs)
                times[i].append(time.perf_counter() - t)
    return [statistics.median(ts[1:]) for ts in times]


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
    t_pruned, t_full = latency([pruned, full], x, repeats)
    return ratio, t_pruned / t_full, t_full


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--iters', type=int, default=300)
    parser.add_argument('--repeats', type=int, default=10)
    parser.add_argument('--data-root', help='default: generated shapes')
    parser.add_argument(
        '--voc-size',
        action='store_true',
        help='also time the full-width detector at 600x1000 (slow on CPU)')
    args = parser.parse_args(argv)
    tmp = tempfile.mkdtemp(prefix='prunedet_bench_')
    data_root = args.data_root or write_shapes_voc(
        osp.join(tmp, 'shapes'), 400, 100)
    t_base, base = train('', data_root, osp.join(tmp, 'base'), args.iters)
    t_rpgp, rpgp = train('_rpgp', data_root, osp.join(tmp, 'rpgp'),
                         args.iters)
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    models = [r.model.eval() for r in (rpgp, base)]
    x = torch.randn(1, 3, 256, 256, device=device)
    flops_ratio = flops(models[0], x) / flops(models[1], x)
    t_pruned, t_full = latency(models, x, args.repeats)
    print(f'torch {torch.__version__} on {device}, '
          f'{torch.get_num_threads()} threads; demo detector (VGG16 x0.25, '
          f'256x256), {args.iters} iterations of batch 4')
    print(f'training time   RPGP {t_rpgp:.1f} s / unpruned {t_base:.1f} s '
          f'= {t_rpgp / t_base:.3f}')
    print(f'inference       FLOPs ratio {flops_ratio:.3f}, latency ratio '
          f'{t_pruned / t_full:.3f} ({t_pruned * 1e3:.1f} / '
          f'{t_full * 1e3:.1f} ms)')
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
