"""Run (or collect) every pruning method of a task and write the method table.

    python tools/analysis/compare_methods.py classification/resnet20_fashion_mnist \\
        --ratios 0.3 0.5 0.7 --cfg-options train_cfg.max_epochs=3

For the task's configs (``configs/<task>.py``, ``<task>_l1.py``, ``_taylor``,
``_psfp``, ``_pgp``, ``_rpgp`` (and their public-code forms ``_pgp_code``,
``_rpgp_code``), ``configs/dcp/<name>_dcp_stage{1,2,3}.py``,
``configs/gal/<name>_gal*.py``; methods without configs are left out) it
trains each method at each ratio with the same options and data, evaluates
the final checkpoint with ``tools/test.py``, measures its parameters and
FLOPs, and writes ``table.md``, ``table.csv`` and ``accuracy_vs_flops.png``
to the work dir: method, pruned % (the target), params, FLOPs, error (or
mAP), the gap to the baseline, and the wall-clock training time with its
ratio to the baseline's (methods that start from the trained baseline or
from another stage include that stage's time).

The ratio is the share of FLOPs removed for the hook-based methods (their
``target`` is set to ``'flops'``) and the share of channels removed per
layer for DCP; the measured FLOPs column makes them comparable. Every run
lives in its own folder (stages that do not depend on the ratio, such as
DCP's first, are run once); a finished one (``result.json``) is not run again,
a failed one is reported in the table (``failed.json``) and retried next
time.
"""
import argparse
import csv
import json
import os
import os.path as osp
import sys
import time
import traceback
from dataclasses import dataclass
from glob import glob
from typing import Dict, List, Optional

TOOLS = osp.dirname(osp.dirname(osp.abspath(__file__)))
ROOT = osp.dirname(TOOLS)
CONFIGS = osp.join(ROOT, 'configs')
sys.path.insert(0, TOOLS)
from common import DictAction  # noqa: E402

HOOK_RATIO = ('custom_hooks.0.target=flops', 'custom_hooks.0.target_ratio={}')
DCP_RATIO = ('train_cfg.pruning_rate={}', )
ORDER = ('baseline', 'l1', 'taylor', 'dcp', 'psfp', 'pgp', 'pgp_code', 'rpgp',
         'rpgp_code', 'gal')


@dataclass
class Stage:
    config: str  # path under configs/, formatted with task and name
    ratio: tuple = ()  # cfg options that set the ratio
    load: Optional[str] = None  # 'baseline' or 'previous': load_from
    trains: bool = True  # False: no training loop (DCP's selection), so
    # the ``train_cfg.*`` options meant for the training stages stay away


def method_stages(task: str) -> Dict[str, List[List[Stage]]]:
    """Per method, the variants to run (lists of stages) whose configs
    exist. GAL's variants are its configs (sparsity comes from lambda)."""
    name = osp.basename(task)
    has = lambda path: osp.isfile(osp.join(CONFIGS, path))  # noqa: E731
    methods = {'baseline': [[Stage(f'{task}.py')]]}
    for method in ('l1', 'psfp', 'pgp', 'pgp_code', 'rpgp', 'rpgp_code'):
        if has(f'{task}_{method}.py'):
            methods[method] = [[Stage(f'{task}_{method}.py', HOOK_RATIO)]]
    if has(f'{task}_taylor.py'):
        methods['taylor'] = [[
            Stage(f'{task}_taylor.py', HOOK_RATIO, load='baseline')
        ]]
    dcp = [f'dcp/{name}_dcp_stage{i}.py' for i in (1, 2, 3)]
    if all(has(p) for p in dcp):
        methods['dcp'] = [[
            Stage(dcp[0], load='baseline'),  # Algorithm 1: a trained model
            Stage(dcp[1], DCP_RATIO, load='previous', trains=False),
            Stage(dcp[2], load='previous')
        ]]
    gal = sorted(
        osp.relpath(p, CONFIGS)
        for p in glob(osp.join(CONFIGS, 'gal', f'{name}_gal*.py'))
        if not p.endswith(('_finetune.py', '_baseline.py')))
    variants = []
    for config in gal:
        finetune = config[:-3] + '_finetune.py'
        stages = [Stage(config, load='baseline')]
        if has(finetune):
            stages.append(Stage(finetune, load='previous'))
        variants.append(stages)
    if variants:
        methods['gal'] = variants
    return methods


class Runs:
    """Trains and evaluates runs in ``work_dir``, each once."""

    def __init__(self, task, work_dir, options, data_root=None,
                 method_options=None):
        self.task = task
        self.work_dir = work_dir
        self.options = list(options)
        self.method_options = method_options or {}
        self.data_root = data_root
        self.baseline: Optional[dict] = None

    def _tool(self, name):
        import importlib.util
        spec = importlib.util.spec_from_file_location(
            f'prunedet_tool_{name}', osp.join(TOOLS, f'{name}.py'))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.main

    def train(self, stage: Stage, run_dir: str, ratio, load_from,
              method: str = '') -> dict:
        """One stage, unless already done: {checkpoint, seconds}."""
        done = osp.join(run_dir, 'result.json')
        if osp.isfile(done):
            with open(done) as f:
                return dict(json.load(f), skipped=True)
        options = list(self.options) + self.method_options.get(method, [])
        if not stage.trains:
            options = [o for o in options if not o.startswith('train_cfg.')]
        options += [o.format(ratio) for o in stage.ratio]
        if load_from:
            options.append(f'load_from={load_from}')
        options.append(
            f'experiment_name={osp.relpath(run_dir, self.work_dir)}'
            .replace(os.sep, '_') + f'_{int(time.time())}')
        args = [osp.join(CONFIGS, stage.config), '--work-dir', run_dir]
        if self.data_root:
            args += ['--data-root', self.data_root]
        start = time.perf_counter()
        self._tool('train')(args + ['--cfg-options', *options])
        seconds = time.perf_counter() - start
        with open(osp.join(run_dir, 'last_checkpoint')) as f:
            checkpoint = f.read().strip()
        result = dict(checkpoint=checkpoint, seconds=seconds,
                      options=options)
        with open(done, 'w') as f:
            json.dump(result, f, indent=1)
        return result

    def evaluate(self, stage: Stage, checkpoint: str, run_dir: str) -> dict:
        done = osp.join(run_dir, 'metrics.json')
        if osp.isfile(done):
            with open(done) as f:
                return json.load(f)
        config = osp.join(CONFIGS, stage.config)
        args = [config, checkpoint, '--work-dir', osp.join(run_dir, 'test')]
        if self.data_root:
            args += ['--data-root', self.data_root]
        if self.options:  # argparse refuses an empty --cfg-options
            args += ['--cfg-options', *self.options]
        metrics = self._tool('test')(args)
        metrics = {k: float(v) for k, v in metrics.items()}
        metrics.update(size(config, checkpoint, self.data_root,
                            self.options))
        with open(done, 'w') as f:
            json.dump(metrics, f, indent=1)
        return metrics

    def run(self, method: str, stages: List[Stage], ratio, label) -> dict:
        """All stages of one method at one ratio; the table's row."""
        row = dict(method=label, ratio=ratio)
        if method == 'baseline':
            run_dirs = [osp.join(self.work_dir, 'baseline')]
        else:  # stages before the first that takes the ratio are shared
            first = next((i for i, s in enumerate(stages) if s.ratio),
                         len(stages))
            run_dirs = [
                osp.join(self.work_dir, label,
                         f'{ratio:g}' if ratio is not None and i >= first
                         else 'shared',
                         f'stage{i + 1}' if len(stages) > 1 else '')
                for i in range(len(stages))
            ]
        failed = osp.join(run_dirs[-1], 'failed.json')
        seconds, previous = 0., None
        try:
            for stage, run_dir in zip(stages, run_dirs):
                os.makedirs(run_dir, exist_ok=True)
                load_from = None
                if stage.load == 'baseline':
                    load_from = self.baseline['checkpoint']
                    seconds += self.baseline['seconds']
                elif stage.load == 'previous':
                    load_from = previous['checkpoint']
                previous = self.train(stage, run_dir, ratio, load_from,
                                      method)
                seconds += previous['seconds']
            metrics = self.evaluate(stages[-1], previous['checkpoint'],
                                    run_dirs[-1])
        except (Exception, SystemExit) as error:  # a row, not a crash
            # (SystemExit: a tool's argparse refusing its options)
            message = f'{type(error).__name__}: {error}'.splitlines()[0]
            os.makedirs(osp.dirname(failed), exist_ok=True)
            with open(failed, 'w') as f:
                json.dump(dict(error=message,
                               traceback=traceback.format_exc()), f)
            print(f'{label} at {ratio}: FAILED: {message}', file=sys.stderr)
            return dict(row, error=message[:120])
        if osp.isfile(failed):
            os.remove(failed)
        if method == 'baseline':
            self.baseline = dict(previous, seconds=seconds)
        return dict(row, seconds=seconds, **metrics)


def size(config, checkpoint, data_root, options) -> dict:
    """Parameters and FLOPs of the checkpoint's model, at the size of one
    test input."""
    import torch
    from mmengine.registry import DATASETS, DefaultScope

    from prunedet.apis import init_model
    from prunedet.pruning.flops import count_params, measure_flops
    from prunedet.pruning.tracing import trace_forward
    from prunedet.utils.config import load_config
    cfg = load_config(config, _options(options), data_root=data_root)
    model = init_model(cfg, checkpoint)
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope')):
        sample = DATASETS.build(cfg.test_dataloader.dataset)[0]
    data = model.data_preprocessor(
        dict(inputs=[sample['inputs']],
             data_samples=[sample['data_samples']]), False)
    with torch.no_grad():
        flops, _ = measure_flops(model, data['inputs'], trace_forward(model))
    return dict(params=count_params(model), flops=flops)


def _options(options: List[str]) -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument('--o', nargs='+', action=DictAction, default={})
    return parser.parse_args(['--o', *options]).o if options else {}


# --- the table ---------------------------------------------------------------


def metric_of(row: dict):
    """(name, value, higher is better) of a row's main metric."""
    if 'pascal_voc/mAP' in row:
        return 'mAP', row['pascal_voc/mAP'], True
    if 'accuracy/top1' in row:
        return 'error (%)', 100. - row['accuracy/top1'], False
    return None, None, None


def table(rows: List[dict]) -> List[dict]:
    """The seed's columns, one dict per row."""
    base = next((r for r in rows if r['method'] == 'baseline'
                 and 'error' not in r), None)
    out = []
    for r in rows:
        name, value, _ = metric_of(r)
        line = {
            'method': r['method'],
            'pruned %': '-' if r['ratio'] is None else f'{100 * r["ratio"]:g}',
        }
        if 'error' in r:
            line.update(result=f'failed: {r["error"]}')
            out.append(line)
            continue
        line['params (K)'] = f'{r["params"] / 1e3:.1f}'
        line['FLOPs (M)'] = f'{r["flops"] / 1e6:.2f}'
        if base:
            line['FLOPs %'] = f'{100 * r["flops"] / base["flops"]:.1f}'
        line[name] = f'{value:.4f}' if name == 'mAP' else f'{value:.2f}'
        if base:
            gap = value - metric_of(base)[1]
            line['gap'] = f'{gap:+.4f}' if name == 'mAP' else f'{gap:+.2f}'
        line['train time (s)'] = f'{r["seconds"]:.1f}'
        if base:
            line['time / baseline'] = f'{r["seconds"] / base["seconds"]:.2f}'
        out.append(line)
    return out


def write(rows: List[dict], work_dir: str, title: str) -> List[str]:
    lines = table(rows)
    columns = []
    for line in lines:
        columns += [k for k in line if k not in columns]
    md = [f'# {title}', '', '| ' + ' | '.join(columns) + ' |',
          '|' + '---|' * len(columns)]
    md += ['| ' + ' | '.join(str(l.get(c, '')) for c in columns) + ' |'
           for l in lines]
    paths = [osp.join(work_dir, n) for n in
             ('table.md', 'table.csv', 'accuracy_vs_flops.png')]
    with open(paths[0], 'w') as f:
        f.write('\n'.join(md) + '\n')
    with open(paths[1], 'w', newline='') as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(lines)
    plot(rows, paths[2], title)
    return paths


def plot(rows: List[dict], out: str, title: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    good = [r for r in rows if 'error' not in r]
    base = next((r for r in good if r['method'] == 'baseline'), None)
    if not good or base is None:
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    name = metric_of(base)[0]
    for method in dict.fromkeys(r['method'] for r in good):
        points = sorted((100 * r['flops'] / base['flops'], metric_of(r)[1])
                        for r in good if r['method'] == method)
        x, y = zip(*points)
        ax.plot(x, y, 'o-' if len(points) > 1 else 's', label=method)
    ax.set_xlabel('FLOPs, % of the baseline')
    ax.set_ylabel(name)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('task', help='config stem under configs/, e.g. '
                        'classification/resnet20_fashion_mnist')
    parser.add_argument('--methods', nargs='+', default=list(ORDER),
                        choices=ORDER)
    parser.add_argument('--ratios', nargs='+', type=float,
                        default=[0.3, 0.5, 0.7])
    parser.add_argument('--work-dir', help='default: work_dirs/compare/TASK')
    parser.add_argument('--data-root')
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        help='key=value options for every run')
    parser.add_argument('--method-options', nargs='+', default=[],
                        metavar='METHOD:KEY=VALUE',
                        help='options for one method\'s runs, e.g. '
                        'taylor:custom_hooks.0.step_channels=16')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if not osp.isfile(osp.join(CONFIGS, f'{args.task}.py')):
        raise FileNotFoundError(f'no baseline config configs/{args.task}.py')
    work_dir = args.work_dir or osp.join('work_dirs', 'compare', args.task)
    os.makedirs(work_dir, exist_ok=True)
    import prunedet  # noqa: F401  (imports out of the first run's time)
    import mmengine.runner  # noqa: F401
    per_method = {}
    for item in args.method_options:
        method, _, option = item.partition(':')
        if method not in ORDER or '=' not in option:
            raise ValueError(f'--method-options takes METHOD:KEY=VALUE with '
                             f'a method of {list(ORDER)}, got {item!r}')
        per_method.setdefault(method, []).append(option)
    runs = Runs(args.task, work_dir, args.cfg_options, args.data_root,
                per_method)
    available = method_stages(args.task)
    methods = ['baseline'] + [m for m in args.methods
                              if m != 'baseline' and m in available]
    missing = sorted(set(args.methods) - set(available))
    if missing:
        print(f'no configs for {missing} in {args.task}: left out')
    rows = []
    for method in methods:
        for stages in available[method]:
            label = method if method != 'gal' else osp.basename(
                stages[0].config)[:-3]
            ratios = [None] if method == 'baseline' or not stages_ratio(
                stages) else args.ratios
            for ratio in ratios:
                rows.append(runs.run(method, stages, ratio, label))
                if method == 'baseline' and 'error' in rows[-1]:
                    raise RuntimeError('the baseline failed: '
                                       f'{rows[-1]["error"]}')
    paths = write(rows, work_dir, args.task)
    print(open(paths[0]).read())
    print('written:', *paths)
    return rows


def stages_ratio(stages: List[Stage]) -> bool:
    return any(s.ratio for s in stages)


if __name__ == '__main__':
    main()
