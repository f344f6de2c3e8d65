"""Time trained (pruned) checkpoints against a reference, side by side.

A latency-target run is only worth its name if the network it leaves runs
as fast as asked, and the fair comparison with a FLOPs-target run is at
equal *measured* latency. Training logs give the hook's estimate; this
builds every checkpoint with its pruned architecture (as ``tools/test.py``
and ``export.py``: :func:`prunedet.apis.init_model`), times batch-1
inference of all of them in every runtime in one interleaved loop
(:func:`prunedet.deploy.latency.median_times`, so machine load hits all
alike) and prints their parameters, FLOPs and latency against the reference.

    python tools/analysis/measure_latency.py --reference CFG CKPT \\
        --models CFG CKPT [CFG CKPT ...] [--names NAME ...] \\
        [--runtime onnxruntime eager] [--repeats 200] [--threads 1] \\
        [--shape C H W]
"""
import argparse
import os.path as osp
import sys
import tempfile

TOOLS = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path[:0] = [TOOLS, osp.join(TOOLS, 'deployment')]
from common import add_checkpoint_args  # noqa: E402  (puts prunedet on the path)
from export import input_shape  # noqa: E402

HEADER = ('model | runtime | params (K) | FLOPs (M) | FLOPs ratio | '
          'latency (ms) | latency ratio | latency / FLOPs')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    pair = dict(nargs=2, metavar=('CONFIG', 'CHECKPOINT'))
    parser.add_argument('--reference', required=True, **pair,
                        help='the model the ratios are taken against')
    parser.add_argument('--models', required=True, nargs='+',
                        metavar='CONFIG CHECKPOINT', help='pairs to time')
    parser.add_argument('--names', nargs='+',
                        help='one per --models (default: config stems)')
    parser.add_argument('--runtime', nargs='+', default=['onnxruntime'],
                        help='of prunedet.deploy.latency.RUNTIMES: eager, '
                        'channels_last, folded, torchscript, onnxruntime')
    parser.add_argument('--repeats', type=int, default=200,
                        help='timed runs of each model, interleaved')
    parser.add_argument('--threads', type=int,
                        help="torch's (and onnxruntime's) threads")
    parser.add_argument('--shape', nargs=3, type=int, metavar=('C', 'H', 'W'),
                        help="one input image (default: a pruning hook's "
                        'input_shape in the configs)')
    add_checkpoint_args(parser)
    args = parser.parse_args(argv)
    if len(args.models) % 2:
        parser.error('--models takes CONFIG CHECKPOINT pairs')
    args.pairs = [tuple(args.reference)] + list(
        zip(args.models[::2], args.models[1::2]))
    stems = [osp.splitext(osp.basename(c))[0] for c, _ in args.pairs]
    if args.names and len(args.names) != len(args.pairs) - 1:
        parser.error(f'--names: {len(args.pairs) - 1} names needed')
    args.labels = [f'{stems[0]} (reference)'] + (args.names or stems[1:])
    return args


def shape_of(models, shape):
    """``--shape``, else the first pruning hook's ``input_shape``."""
    for model in models:
        try:
            return input_shape(model.cfg, shape, '')
        except ValueError:
            pass
    raise ValueError('no config names an input_shape (in its pruning '
                     'hook): give --shape C H W')


def main(argv=None):
    args = parse_args(argv)
    import torch

    import prunedet  # noqa: F401  (registers prunedet's modules)
    from prunedet.apis import init_model
    from prunedet.deploy.latency import median_times, network_fn
    from prunedet.pruning.flops import count_params, measure_flops
    from prunedet.pruning.tracing import trace_forward
    if args.threads:
        torch.set_num_threads(args.threads)
    models = [init_model(c, p, 'cpu', args.cfg_options,
                         trusted=args.trust_checkpoint)
              for c, p in args.pairs]
    x = torch.randn(1, *shape_of(models, args.shape))
    flops = [measure_flops(m, x, trace_forward(m))[0] for m in models]
    with tempfile.TemporaryDirectory() as tmp:
        fns = [network_fn(m, r, x, tmp) for r in args.runtime
               for m in models]
        times = median_times(fns, args.repeats)
    rows = []
    for i, runtime in enumerate(args.runtime):
        ts = times[i * len(models):(i + 1) * len(models)]
        for label, model, f, t in zip(args.labels, models, flops, ts):
            rows.append(dict(
                model=label, runtime=runtime, params=count_params(model),
                flops=f, flops_ratio=f / flops[0], ms=1e3 * t,
                latency_ratio=t / ts[0],
                latency_per_flops=t / ts[0] / (f / flops[0])))
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads, '
          f'batch 1, input {tuple(x.shape[1:])}, {args.repeats} runs each, '
          'medians, all models interleaved')
    print(HEADER)
    print('|'.join(['---'] * len(HEADER.split('|'))))
    for r in rows:
        print(f'{r["model"]} | {r["runtime"]} | {r["params"] / 1e3:.1f} | '
              f'{r["flops"] / 1e6:.2f} | {r["flops_ratio"]:.3f} | '
              f'{r["ms"]:.3f} | {r["latency_ratio"]:.3f} | '
              f'{r["latency_per_flops"]:.3f}')
    return rows


if __name__ == '__main__':
    main()
