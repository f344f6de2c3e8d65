"""Report what pruning did in a work dir: channels kept per layer,
parameters and FLOPs before and after, and a plot of FLOPs and loss over
training.

    python tools/analysis/pruning_report.py work_dirs/demo_rpgp [--out FILE]
    python tools/analysis/pruning_report.py WORK_DIR --no-plot  # no log

Reads the newest complete checkpoint (its ``pruning`` state, written by
ProgressivePruningHook; a truncated newer file is skipped, as ``--resume``
does) and the newest training log of mmengine's LocalVisBackend
(``<timestamp>/vis_data/scalars.json``).
"""
import argparse
import glob
import json
import os.path as osp
import sys


sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from common import add_checkpoint_args  # noqa: E402  (puts prunedet on the path)

from prunedet.engine.checkpoints import (  # noqa: E402
    load_file, newest_checkpoint, trust)
from prunedet.engine.runner_model import architecture_of  # noqa: E402


class _Warn:
    """Warnings to stderr, where they do not mix with the report."""

    @staticmethod
    def warning(msg):
        print(f'WARNING: {msg}', file=sys.stderr)


def checkpoint_of(work_dir: str) -> str:
    """The newest complete checkpoint of ``work_dir``."""
    if not osp.isdir(work_dir):
        raise FileNotFoundError(f'work dir {work_dir!r} does not exist')
    found = newest_checkpoint(work_dir, _Warn)
    if found is None:
        raise FileNotFoundError(f'no checkpoint (*.pth) in {work_dir}')
    return found


def training_curve(work_dir: str):
    """(iteration, loss, flops_ratio) rows of the newest log with training
    losses (``tools/test.py`` into the same work dir logs metrics only)."""
    logs = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    for log in sorted(logs, reverse=True):
        rows = []
        with open(log) as f:
            for line in f:
                entry = json.loads(line)
                if 'loss' in entry:
                    rows.append((entry['step'], entry['loss'],
                                 entry.get('flops_ratio', 1.)))
        if rows:
            return rows
    return []


def _scaled(value, scale: float) -> str:
    return 'n/a' if value is None else f'{value / scale:.3f}'


def _ratio(part, whole) -> str:
    """``part / whole``, or n/a when the record has no (or a zero) whole."""
    return f'{part / whole:.3f}' if whole else 'n/a'


def table(state: dict, arch: dict, weights: dict) -> str:
    lines = [f'{"layer (channel group)":<40} {"kept":>6} {"of":>6} {"%":>6}']
    for name, total in state.get('original', {}).items():
        kept = arch[name][1]
        percent = f'{100 * kept / total:>5.1f}%' if total else '   n/a'
        lines.append(f'{name:<40} {kept:>6} {total:>6} {percent}')
    params = sum(v.numel() for k, v in weights.items()
                 if not k.endswith(('running_mean', 'running_var',
                                    'num_batches_tracked')))
    flops, ratio = state.get('original_flops'), state.get('flops_ratio')
    after = None if flops is None or ratio is None else flops * ratio
    original_params = state.get('original_params')
    lines += [
        '', f'{"":<28} {"before":>12} {"after":>12} {"ratio":>8}',
        f'{"parameters (M)":<28} {_scaled(original_params, 1e6):>12} '
        f'{params / 1e6:>12.3f} {_ratio(params, original_params):>8}',
        f'{"FLOPs (G, multiply-adds)":<28} {_scaled(flops, 1e9):>12} '
        f'{_scaled(after, 1e9):>12} {_scaled(ratio, 1):>8}'
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
    parser.add_argument(
        '--checkpoint', help='default: the newest complete one')
    parser.add_argument(
        '--out', help='plot file (default: WORK_DIR/pruning_report.png)')
    parser.add_argument(
        '--no-plot', action='store_true',
        help='report the checkpoint only (e.g. when the log is gone)')
    add_checkpoint_args(parser, cfg_options=False)
    args = parser.parse_args(argv)
    ckpt_path = args.checkpoint or checkpoint_of(args.work_dir)
    if args.trust_checkpoint:
        trust([ckpt_path])
    ckpt = load_file(ckpt_path, map_location='cpu')
    arch = architecture_of(ckpt)
    if 'pruning' not in ckpt or arch is None:
        raise KeyError(f'{ckpt_path} was not written by a pruning run '
                       '(no ProgressivePruningHook state)')
    report = table(ckpt['pruning'], arch['channels'], ckpt['state_dict'])
    rows = [] if args.no_plot else training_curve(args.work_dir)
    if not rows and not args.no_plot:
        raise FileNotFoundError(
            f'no training log in {args.work_dir} (mmengine\'s '
            '<timestamp>/vis_data/scalars.json with losses) to plot; '
            'pass --no-plot to report the checkpoint alone')
    print(f'checkpoint: {ckpt_path}')
    print(report)
    out = args.out or osp.join(args.work_dir, 'pruning_report.png')
    if rows:
        plot(rows, out)
        print(f'plot: {out}')
    return report, out if rows else None


if __name__ == '__main__':
    main()
