"""Report what pruning did in a work dir: channels kept per layer,
parameters and FLOPs before and after, and a plot of FLOPs and loss over
training.

    python tools/analysis/pruning_report.py work_dirs/demo_rpgp [--out FILE]

Reads the last checkpoint (its ``pruning`` state, written by
ProgressivePruningHook) and the training log of mmengine's LocalVisBackend
(``<timestamp>/vis_data/scalars.json``).
"""
import argparse
import glob
import json
import os.path as osp
import sys


sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from common import add_checkpoint_args  # noqa: E402  (puts prunedet on the path)

from prunedet.engine.checkpoints import load_file, trust  # noqa: E402
from prunedet.engine.runner_model import architecture_of  # noqa: E402


def last_checkpoint(work_dir: str) -> str:
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        return open(pointer).read().strip()
    found = sorted(glob.glob(osp.join(work_dir, '*.pth')), key=osp.getmtime)
    if not found:
        raise FileNotFoundError(f'no checkpoint in {work_dir}')
    return found[-1]


def training_curve(work_dir: str):
    """(iteration, loss, flops_ratio) rows of the newest run's log."""
    logs = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                     'scalars.json')))
    rows = []
    if logs:
        for line in open(logs[-1]):
            entry = json.loads(line)
            if 'loss' in entry:
                rows.append((entry['step'], entry['loss'],
                             entry.get('flops_ratio', 1.)))
    return rows


def table(state: dict, arch: dict, weights: dict) -> str:
    original = state['original']
    lines = [f'{"layer (channel group)":<40} {"kept":>6} {"of":>6} {"%":>6}']
    for name, total in original.items():
        kept = arch[name][1]
        lines.append(f'{name:<40} {kept:>6} {total:>6} '
                     f'{100 * kept / total:>5.1f}%')
    params = sum(v.numel() for k, v in weights.items()
                 if not k.endswith(('running_mean', 'running_var',
                                    'num_batches_tracked')))
    flops = state['original_flops']
    lines += [
        '', f'{"":<28} {"before":>12} {"after":>12} {"ratio":>8}',
        f'{"parameters (M)":<28} {state["original_params"] / 1e6:>12.3f} '
        f'{params / 1e6:>12.3f} {params / state["original_params"]:>8.3f}',
        f'{"FLOPs (G, multiply-adds)":<28} {flops / 1e9:>12.3f} '
        f'{flops * state["flops_ratio"] / 1e9:>12.3f} '
        f'{state["flops_ratio"]:>8.3f}'
    ]
    return '\n'.join(lines)


def plot(rows, out: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    it, loss, flops = zip(*rows)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(it, loss, color='tab:blue')
    ax.set_xlabel('iteration')
    ax.set_ylabel('training loss', color='tab:blue')
    right = ax.twinx()
    right.plot(it, [100 * f for f in flops], color='tab:red')
    right.set_ylabel('FLOPs, % of the unpruned model', color='tab:red')
    right.set_ylim(0, 105)
    ax.set_title('Progressive pruning while training')
    fig.tight_layout()
    fig.savefig(out, dpi=100)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('work_dir')
    parser.add_argument('--checkpoint', help='default: the last one')
    parser.add_argument(
        '--out', help='plot file (default: WORK_DIR/pruning_report.png)')
    add_checkpoint_args(parser, cfg_options=False)
    args = parser.parse_args(argv)
    ckpt_path = args.checkpoint or last_checkpoint(args.work_dir)
    if args.trust_checkpoint:
        trust([ckpt_path])
    ckpt = load_file(ckpt_path, map_location='cpu')
    if 'pruning' not in ckpt:
        raise KeyError(f'{ckpt_path} was not written by a pruning run '
                       '(no ProgressivePruningHook state)')
    print(f'checkpoint: {ckpt_path}')
    report = table(ckpt['pruning'], architecture_of(ckpt)['channels'],
                   ckpt['state_dict'])
    print(report)
    rows = training_curve(args.work_dir)
    out = args.out or osp.join(args.work_dir, 'pruning_report.png')
    if rows:
        plot(rows, out)
        print(f'plot: {out}')
    return report, out if rows else None


if __name__ == '__main__':
    main()
