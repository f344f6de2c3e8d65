"""The domain-adaptation table: source-only, MMD, RPGP and TCP over seeds.

    python tools/analysis/da_table.py office31_synthetic [--seeds 0 1 2]
    python tools/analysis/da_table.py digits [--seeds 0 1 2]

For each transfer of the task, each seed and each method it trains the
shipped config (``randomness.seed`` set), evaluates the final checkpoint on
the target with ``tools/test.py``, measures its FLOPs, and writes
``table.md`` and ``results.json`` to the work dir: target top-1 as mean ±
standard deviation over the seeds (with the range), the FLOPs of the pruned
models relative to the unpruned MMD model, and how many runs the
``CollapseGuardHook`` flagged. Runs reuse ``compare_methods.Runs``: a
finished run is not run again, a failed one is a cell saying why.

Tasks (the recipe is in the configs; the options below only shrink them to a
CPU, and are printed in the table):

* ``office31_synthetic``: the Office-31 configs (``vgg16_office31_{a2d,a2w}``,
  the pretrained-weights recipe) on Office-31-format data written by
  ``prunedet.datasets.synthetic_office`` (64 px, 20 images per class and
  domain), VGG-16 at a quarter of the width. No ImageNet weights exist here,
  so a source-only stage (``--pretrain-iters``, every layer at the full lr)
  stands in for them; then each method fine-tunes from it for ``--iters``.
* ``digits``: ``vgg16_digits_uci2mnist_*`` (the from-scratch recipe) on the
  data of ``tools/data/prepare_digits.py``, as shipped (``--iters`` shortens).
"""
import argparse
import json
import os
import os.path as osp
import statistics
import sys
from glob import glob

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from compare_methods import CONFIGS, ROOT, Runs, Stage  # noqa: E402

METHODS = ('source_only', 'mmd', 'rpgp', 'tcp')
COLLAPSED = 'CollapseGuardHook: the adapted features have collapsed'


def _office_size(px=64):
    """The Office-31 configs at CPU size: VGG-16 x0.25 (fc6/fc7 and the
    bottleneck 256 wide), ``px`` crops of images resized to 9/8 of it."""
    options = [
        'model.backbone.widen_factor=0.25', 'model.backbone.fc_channels=256',
        f'model.backbone.pool_size={px // 32}', 'model.backbone.init_cfg=None',
        'model.neck.in_channels=256', 'model.neck.out_channels=256',
        'train_dataloader.num_workers=0', 'val_dataloader.num_workers=0',
        'test_dataloader.num_workers=0'
    ]
    resize = f'({px * 9 // 8},{px * 9 // 8})'
    for side in ('source', 'target'):
        key = f'train_dataloader.dataset.{side}.pipeline'
        options += [f'{key}.1.scale={resize}', f'{key}.2.crop_size={px}']
    for split in ('val_dataloader', 'test_dataloader'):
        key = f'{split}.dataset.pipeline'
        options += [f'{key}.1.scale={resize}', f'{key}.2.crop_size={px}']
    return options


TASKS = dict(
    office31_synthetic=dict(
        transfers=('a2d', 'a2w'),
        config='domain_adaptation/vgg16_office31_{transfer}_{method}.py',
        data_root='data/office31_synthetic',
        options=_office_size(),
        pretrain_options=[
            'optim_wrapper.paramwise_cfg.custom_keys.backbone.lr_mult=1.0'
        ],
        iters=400,
        pretrain_iters=800),
    digits=dict(
        transfers=('uci2mnist', ),
        config='domain_adaptation/vgg16_digits_{transfer}_{method}.py',
        data_root='data/digits',
        options=[
            'train_dataloader.num_workers=0', 'val_dataloader.num_workers=0',
            'test_dataloader.num_workers=0'
        ],
        iters=None,
        pretrain_iters=0),
)


def prepare_data(task: str, data_root: str) -> None:
    if task == 'office31_synthetic':
        if not osp.isdir(osp.join(data_root, 'dslr')):
            from prunedet.datasets.synthetic_office import write_office31
            write_office31(data_root, ('amazon', 'webcam', 'dslr'),
                           images_per_class=20, size=64)
    elif not osp.isdir(osp.join(data_root, 'mnist')):
        raise FileNotFoundError(
            f'no digits in {data_root!r}: run tools/data/prepare_digits.py '
            f'{data_root} first')


def collapsed(run_dir: str) -> bool:
    return any(COLLAPSED in open(log).read()
               for log in glob(osp.join(run_dir, '*', '*.log')))


def run_transfer(task: dict, transfer: str, seed: int, work_dir: str,
                 data_root: str, iters, pretrain_iters, methods,
                 options) -> dict:
    """Per method: {top1, flops, collapsed} or {error}, for one seed."""
    seed_dir = osp.join(work_dir, transfer, f'seed{seed}')
    base = [f'randomness.seed={seed}'] + task['options'] + list(options)

    def config(method):
        return task['config'].format(transfer=transfer, method=method)

    load_from = None
    if pretrain_iters:  # a source-trained network stands in for ImageNet's
        runs = Runs(transfer, seed_dir, base + task['pretrain_options'] + [
            f'train_cfg.max_iters={pretrain_iters}',
            f'train_cfg.val_interval={pretrain_iters}'
        ], data_root)
        run_dir = osp.join(seed_dir, 'pretrain')
        os.makedirs(run_dir, exist_ok=True)
        load_from = runs.train(Stage(config('source_only')), run_dir, None,
                               None)['checkpoint']
    if not iters:  # evaluate once, at the end (tools/test.py does it)
        from mmengine.config import Config
        iters = Config.fromfile(osp.join(
            CONFIGS, config('mmd'))).train_cfg.max_iters
    base += [f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}']
    runs = Runs(transfer, seed_dir, base, data_root)
    results, checkpoints = {}, {}
    for method in methods:
        run_dir = osp.join(seed_dir, method)
        os.makedirs(run_dir, exist_ok=True)
        stage = Stage(config(method))
        start = load_from
        if method == 'tcp':  # TCP prunes the trained MMD model
            start = checkpoints.get('mmd')
        try:
            if start is None and method == 'tcp':
                raise RuntimeError('TCP starts from the MMD run, which '
                                   'failed or was not asked for')
            checkpoint = runs.train(stage, run_dir, None,
                                    start)['checkpoint']
            checkpoints[method] = checkpoint
            metrics = runs.evaluate(stage, checkpoint, run_dir)
        except Exception as error:  # a failed run is a cell, not a crash
            message = f'{type(error).__name__}: {error}'.splitlines()[0]
            print(f'{transfer} seed {seed} {method}: FAILED: {message}',
                  file=sys.stderr)
            results[method] = dict(error=message[:120])
            continue
        results[method] = dict(
            top1=metrics['accuracy/top1'], flops=metrics['flops'],
            collapsed=collapsed(run_dir))
    return results


def summary(values):
    """'mean ± std (min-max)' of a list of numbers."""
    if not values:
        return '-'
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.
    return f'{mean:.1f} ± {std:.1f} ({min(values):.1f}-{max(values):.1f})'


def table(results: dict, methods, seeds) -> list:
    """Markdown lines: one row per transfer."""
    header = ['transfer'] + [m.replace('_', '-') for m in methods]
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    for transfer, per_seed in results.items():
        cells = [transfer]
        for method in methods:
            runs = [per_seed[s][method] for s in seeds
                    if method in per_seed.get(s, {})]
            good = [r for r in runs if 'error' not in r]
            cell = summary([r['top1'] for r in good])
            mmd = [per_seed[s]['mmd']['flops'] for s in seeds
                   if 'flops' in per_seed.get(s, {}).get('mmd', {})]
            if method in ('rpgp', 'tcp') and good and mmd:
                ratio = statistics.fmean(r['flops'] for r in good) / \
                    statistics.fmean(mmd)
                cell += f', {100 * ratio:.0f}% FLOPs'
            flagged = sum(r['collapsed'] for r in good)
            if flagged:
                cell += f', collapsed {flagged}/{len(good)}'
            if len(good) < len(runs):
                cell += f', failed {len(runs) - len(good)}'
            cells.append(cell)
        lines.append('| ' + ' | '.join(cells) + ' |')
    return lines


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('task', choices=sorted(TASKS))
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    parser.add_argument('--methods', nargs='+', default=list(METHODS),
                        choices=METHODS)
    parser.add_argument('--transfers', nargs='+',
                        help='a subset of the task\'s transfers')
    parser.add_argument('--iters', type=int,
                        help='training iterations per method run')
    parser.add_argument('--pretrain-iters', type=int,
                        help='iterations of the source-only stand-in for '
                        'pretrained weights (office31_synthetic)')
    parser.add_argument('--data-root')
    parser.add_argument('--work-dir', help='default: work_dirs/da_table/TASK')
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        help='key=value options for every run')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    task = TASKS[args.task]
    data_root = args.data_root or osp.join(ROOT, task['data_root'])
    work_dir = args.work_dir or osp.join('work_dirs', 'da_table', args.task)
    os.makedirs(work_dir, exist_ok=True)
    prepare_data(args.task, data_root)
    import prunedet  # noqa: F401
    iters = args.iters or task['iters']
    pretrain_iters = task['pretrain_iters'] if args.pretrain_iters is None \
        else args.pretrain_iters
    transfers = args.transfers or task['transfers']
    unknown = sorted(set(transfers) - set(task['transfers']))
    if unknown:
        raise ValueError(f'{args.task} has no transfers {unknown}; choose '
                         f'from {task["transfers"]}')
    results = {}
    for transfer in transfers:
        results[transfer] = {
            seed: run_transfer(task, transfer, seed, work_dir, data_root,
                               iters, pretrain_iters, args.methods,
                               args.cfg_options)
            for seed in args.seeds
        }
    lines = [
        f'# {args.task}: target top-1 (%), mean ± std over seeds '
        f'{args.seeds} (range)', '',
        f'configs: `configs/{task["config"]}`; iterations: '
        f'{iters or "as in the configs"}'
        + (f' after {pretrain_iters} source-only' if pretrain_iters else ''),
        f'options: `{" ".join(task["options"] + args.cfg_options)}`', ''
    ] + table(results, args.methods, args.seeds)
    with open(osp.join(work_dir, 'table.md'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    with open(osp.join(work_dir, 'results.json'), 'w') as f:
        json.dump(results, f, indent=1)
    print('\n'.join(lines))
    return results


if __name__ == '__main__':
    main()
