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

``--seeds 0 1 2`` runs everything once per seed (``randomness.seed``, a
folder per seed) and reports each cell as mean ± standard deviation with the
range, marking a method whose range overlaps the best one's ("within spread
of"). ``--protocols paper equal``: in the **paper** protocol each method has
its own schedule (from-scratch methods the baseline's epochs; post-training
methods the trained baseline plus their stages); in **equal compute** every
method trains the same total epochs (``--equal-epochs``), the baseline's
included for the methods that start from it. ``--scale`` shrinks every
stage's epochs, moving the learning-rate steps with them.

    python tools/analysis/compare_methods.py classification/lenet5_fashion_mnist \\
        --ratios 0.7 --dcp-ratios 0.6 --gal-lambdas 0.05 --scale 0.4 \\
        --seeds 0 1 2 --protocols paper equal --equal-epochs 12 \\
        --equal-seeds 0

The ratio is the share of FLOPs removed for the hook-based methods (their
``target`` is set to ``'flops'``) and the share of channels removed per
layer for DCP (``--dcp-ratios`` gives it its own value per ratio: on
LeNet-5, 0.6 of the channels is 70.8% of the FLOPs; such runs live in
``dcp/0.7-as-0.6``); the measured FLOPs column makes them comparable. Every run
lives in its own folder (stages that do not depend on the ratio, such as
DCP's first, are run once); a finished one (``result.json``) is not run again,
a failed one is reported in the table (``failed.json``) and retried next
time, and an interrupted one goes on from its newest complete checkpoint
(``tools/train.py --resume``; its time column then says it holds only the
part after that).
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
EPOCHS = 'train_cfg.max_epochs='
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


def shown_name(label: str) -> str:
    """A row's name in the table: a GAL run's folder is named after its
    config (``lenet5_fashion_mnist_gal-0.05``), its row after its λ."""
    head, sep, lam = label.rpartition('_gal-')
    return f'GAL λ={lam}' if sep else label


# --- schedules and protocols -------------------------------------------------


def schedule_options(cfg, epochs: int) -> List[str]:
    """Options that train ``cfg`` for ``epochs`` epochs with its epoch-based
    learning-rate steps at the same fractions of training (setting
    ``max_epochs`` alone would leave a 20-epoch schedule's steps at 10 and
    15 past the end of an 8-epoch run: no decay at all). Iteration-based
    configs are left as they are."""
    old = cfg.get('train_cfg', {}).get('max_epochs')
    if not old or epochs == old:
        return []
    factor = epochs / old
    options = [f'train_cfg.max_epochs={epochs}']
    schedulers = cfg.get('param_scheduler') or []
    single = isinstance(schedulers, dict)
    for i, sch in enumerate([schedulers] if single else schedulers):
        if not sch.get('by_epoch', True):
            continue
        key = 'param_scheduler.' + ('' if single else f'{i}.')
        if 'milestones' in sch:
            steps = sorted({round(m * factor) for m in sch['milestones']}
                           & set(range(1, epochs)))
            options.append(f'{key}milestones=[{",".join(map(str, steps))}]')
        for name in ('T_max', 'step_size'):
            if name in sch:
                options.append(f'{key}{name}={max(1, round(sch[name] * factor))}')
        begin = round(sch.get('begin', 0) * factor)
        if sch.get('begin'):
            options.append(f'{key}begin={begin}')
        end = sch.get('end')
        if end is not None and end < 10**8:
            options.append(f'{key}end={max(begin + 1, round(end * factor))}')
    return options


def split_epochs(paper: List[Optional[int]], budget: int) -> List[Optional[int]]:
    """``budget`` epochs over the training stages in proportion to their
    ``paper`` epochs (largest remainder, at least one each); stages that do
    not train (None) stay None."""
    trained = [i for i, e in enumerate(paper) if e]
    if budget < len(trained):
        raise ValueError(f'{budget} epochs cannot feed {len(trained)} '
                         'training stages')
    total = sum(paper[i] for i in trained)
    share = {i: budget * paper[i] / total for i in trained}
    out = {i: max(1, int(share[i])) for i in trained}
    for i in sorted(trained, key=lambda i: share[i] - int(share[i]),
                    reverse=True):
        if sum(out.values()) >= budget:
            break
        out[i] += 1
    while sum(out.values()) > budget:  # the max(1, .) floors overshot
        i = max(out, key=out.get)
        out[i] -= 1
    return [out.get(i) for i in range(len(paper))]


class Runs:
    """Trains and evaluates the runs of one seed in ``work_dir``, each once.

    ``scale`` multiplies every training stage's epochs (the paper protocol
    at a size a CPU can run); a ``train_cfg.max_epochs`` in the options of
    every run or of one method sets that number instead. Either way the
    learning-rate steps move with it (:func:`schedule_options`)."""

    def __init__(self, task, work_dir, options, data_root=None,
                 method_options=None, scale: float = 1.):
        self.task = task
        self.work_dir = work_dir
        self.options = list(options)
        self.method_options = method_options or {}
        self.data_root = data_root
        self.scale = scale
        self.baseline: Optional[dict] = None  # the paper baseline: what
        # post-training methods load, in every protocol
        self._configs = {}

    def _tool(self, name):
        import importlib.util
        spec = importlib.util.spec_from_file_location(
            f'prunedet_tool_{name}', osp.join(TOOLS, f'{name}.py'))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.main

    def _stage_options(self, stage: Stage, method: str) -> List[str]:
        options = list(self.options) + self.method_options.get(method, [])
        if not stage.trains:
            options = [o for o in options if not o.startswith('train_cfg.')]
        return options

    def _config(self, stage: Stage, method: str):
        """The stage's config with the options that are not its epochs."""
        options = [o for o in self._stage_options(stage, method)
                   if not o.startswith(EPOCHS)]
        key = (stage.config, tuple(options))
        if key not in self._configs:
            from prunedet.utils.config import load_config
            self._configs[key] = load_config(
                osp.join(CONFIGS, stage.config), _options(options),
                data_root=self.data_root)
        return self._configs[key]

    def paper_epochs(self, stage: Stage, method: str) -> Optional[int]:
        """The stage's epochs in the paper protocol (None: it does not
        train, or counts iterations)."""
        if not stage.trains:
            return None
        asked = [o for o in self._stage_options(stage, method)
                 if o.startswith(EPOCHS)]
        if asked:  # no config to read
            return int(asked[-1][len(EPOCHS):])
        own = self._config(stage, method).get('train_cfg', {}).get(
            'max_epochs')
        return own and max(1, round(own * self.scale))

    def train(self, stage: Stage, run_dir: str, ratio, load_from,
              method: str = '', epochs: Optional[int] = None) -> dict:
        """One stage, unless already done: {checkpoint, seconds}."""
        done = osp.join(run_dir, 'result.json')
        if osp.isfile(done):
            with open(done) as f:
                return dict(json.load(f), skipped=True)
        options = self._stage_options(stage, method)
        if epochs is not None:
            options = [o for o in options if not o.startswith(EPOCHS)]
            options += schedule_options(self._config(stage, method), epochs)
        options += [o.format(ratio) for o in stage.ratio]
        if load_from:
            options.append(f'load_from={load_from}')
        options.append(
            f'experiment_name={osp.relpath(run_dir, self.work_dir)}'
            .replace(os.sep, '_') + f'_{int(time.time())}')
        args = [osp.join(CONFIGS, stage.config), '--work-dir', run_dir]
        if self.data_root:
            args += ['--data-root', self.data_root]
        # an interrupted stage goes on from its newest complete checkpoint;
        # its time is then only the part after it (the row says so)
        resumed = osp.isfile(osp.join(run_dir, 'last_checkpoint'))
        if resumed:
            args.append('--resume')
        start = time.perf_counter()
        self._tool('train')(args + ['--cfg-options', *options])
        seconds = time.perf_counter() - start
        with open(osp.join(run_dir, 'last_checkpoint')) as f:
            checkpoint = f.read().strip()
        result = dict(checkpoint=checkpoint, seconds=seconds,
                      options=options, resumed=resumed)
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

    def protocol_epochs(self, method: str, stages: List[Stage],
                        protocol: str, total: Optional[int] = None):
        """Per stage, the epochs it trains in ``protocol``: 'paper' (each
        stage its own, scaled) or 'equal' (``total`` epochs in all, the
        baseline's included for the methods that start from it)."""
        paper = [self.paper_epochs(s, method) for s in stages]
        if protocol == 'paper' or not any(paper):
            return paper
        loads = any(s.load == 'baseline' for s in stages)
        budget = total - (self.baseline_epochs() if loads else 0)
        return split_epochs(paper, budget)

    def baseline_epochs(self) -> int:
        stage = method_stages(self.task)['baseline'][0][0]
        return self.paper_epochs(stage, 'baseline')

    def run(self, method: str, stages: List[Stage], ratio, label,
            epochs: Optional[List[Optional[int]]] = None,
            own_ratio=None) -> dict:
        """All stages of one method at one ratio; the table's row. Stages
        trained for other epochs than the paper protocol's get their own
        folders (``stage1-4ep``); the same run is never trained twice.
        ``own_ratio``: the value the method's ratio options get, when it is
        not the row's (DCP's share of channels for a FLOPs target)."""
        paper = [self.paper_epochs(s, method) for s in stages]
        epochs = list(epochs or paper)
        row = dict(method=label, ratio=ratio)
        suffix = ['' if e == p else f'-{e}ep' for e, p in zip(epochs, paper)]
        if method == 'baseline':
            run_dirs = [osp.join(self.work_dir, 'baseline' + suffix[0])]
        else:  # stages before the first that takes the ratio are shared
            first = next((i for i, s in enumerate(stages) if s.ratio),
                         len(stages))
            name = 'shared' if ratio is None else f'{ratio:g}' \
                if own_ratio in (None, ratio) else \
                f'{ratio:g}-as-{own_ratio:g}'  # another value, another run
            run_dirs = [
                osp.join(self.work_dir, label,
                         name if ratio is not None and i >= first
                         else 'shared',
                         f'stage{i + 1}{suffix[i]}' if len(stages) > 1
                         else suffix[i].lstrip('-'))
                for i in range(len(stages))
            ]
        failed = osp.join(run_dirs[-1], 'failed.json')
        seconds, previous, total, resumed = 0., None, 0, False
        try:
            for stage, run_dir, n in zip(stages, run_dirs, epochs):
                os.makedirs(run_dir, exist_ok=True)
                load_from = None
                if stage.load == 'baseline':
                    load_from = self.baseline['checkpoint']
                    seconds += self.baseline['seconds']
                    total += self.baseline.get('epochs') or 0
                elif stage.load == 'previous':
                    load_from = previous['checkpoint']
                previous = self.train(
                    stage, run_dir, ratio if own_ratio is None else own_ratio,
                    load_from, method, n)
                seconds += previous['seconds']
                resumed |= previous.get('resumed', False)
                total += n or 0
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
        if method == 'baseline' and epochs == paper:
            self.baseline = dict(previous, seconds=seconds, epochs=total)
        return dict(row, seconds=seconds, epochs=total or None,
                    **metrics, **({'resumed': True} if resumed else {}))


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


def cells(rows: List[dict]) -> List[dict]:
    """The runs of every seed grouped into one cell per protocol, method
    and ratio: the metric's mean, standard deviation (n - 1) and range."""
    groups = {}
    for r in rows:
        key = (r.get('protocol', 'paper'), r['method'], r['ratio'])
        groups.setdefault(key, []).append(r)
    out = []
    for (protocol, method, ratio), runs in groups.items():
        good = [r for r in runs if 'error' not in r]
        cell = dict(protocol=protocol, method=method, ratio=ratio,
                    seeds=len(runs), ok=len(good))
        if not good:
            cell['error'] = runs[0]['error']
            out.append(cell)
            continue
        values = [metric_of(r)[1] for r in good]
        mean = sum(values) / len(values)
        std = (sum((v - mean)**2 for v in values) / (len(values) - 1))**.5 \
            if len(values) > 1 else None
        name, _, higher = metric_of(good[0])
        cell.update(name=name, higher=higher, mean=mean, std=std,
                    low=min(values), high=max(values), epochs=good[0].get(
                        'epochs'))
        for key in ('params', 'flops', 'seconds'):
            cell[key] = sum(r[key] for r in good) / len(good)
        cell['resumed'] = any(r.get('resumed') for r in good)
        out.append(cell)
    mark_spread(out)
    return out


def mark_spread(cells_: List[dict]) -> None:
    """Per protocol and ratio, the best pruned method is 'best'; another
    whose range over the seeds overlaps the best one's is 'within spread':
    the seeds do not tell them apart."""
    for cell in cells_:
        if cell['method'] == 'baseline' or 'mean' not in cell:
            continue
        rivals = [c for c in cells_ if 'mean' in c and c['method'] !=
                  'baseline' and (c['protocol'], c['ratio']) ==
                  (cell['protocol'], cell['ratio'])]
        sign = 1 if cell['higher'] else -1
        best = max(rivals, key=lambda c: sign * c['mean'])
        if best is cell:
            cell['spread'] = 'best' if len(rivals) > 1 else ''
        elif cell['ok'] > 1 and best['ok'] > 1:
            overlap = cell['low'] <= best['high'] and best['low'] <= \
                cell['high']
            cell['spread'] = f'within spread of {best["method"]}' \
                if overlap else ''


def table(rows: List[dict]) -> List[dict]:
    """The seed's columns, one dict per cell (protocol, method, ratio)."""
    out = []
    all_cells = cells(rows)
    several = any(c['seeds'] > 1 for c in all_cells)
    for c in all_cells:
        base = next((b for b in all_cells if b['method'] == 'baseline' and
                     b['protocol'] == c['protocol'] and 'mean' in b), None)
        line = {
            'method': c['method'],
            'pruned %': '-' if c['ratio'] is None else f'{100 * c["ratio"]:g}',
        }
        if 'error' in c:
            line.update(result=f'failed: {c["error"]}',
                        protocol=c['protocol'])
            out.append(line)
            continue
        mAP = c['name'] == 'mAP'
        fmt = (lambda v: f'{v:.4f}') if mAP else (lambda v: f'{v:.2f}')
        line['epochs'] = c['epochs'] or '-'
        line['params (K)'] = f'{c["params"] / 1e3:.1f}'
        line['FLOPs (M)'] = f'{c["flops"] / 1e6:.2f}'
        if base:
            line['FLOPs %'] = f'{100 * c["flops"] / base["flops"]:.1f}'
        line[c['name']] = fmt(c['mean']) + (
            f' ± {fmt(c["std"])}' if c['std'] is not None else '')
        if several:
            line['range'] = f'{fmt(c["low"])}-{fmt(c["high"])}'
            line['seeds'] = f'{c["ok"]}/{c["seeds"]}'
        if base:
            gap = c['mean'] - base['mean']
            line['gap'] = f'{gap:+.4f}' if mAP else f'{gap:+.2f}'
        if several:
            line['vs best'] = c.get('spread', '')
        line['train time (s)'] = f'{c["seconds"]:.1f}'
        if base:
            line['time / baseline'] = f'{c["seconds"] / base["seconds"]:.2f}'
        if c['resumed']:  # only the time after the resume was measured
            line['train time (s)'] += ' (resumed: part)'
        if base and (c['resumed'] or base['resumed']):
            line['time / baseline'] += ' (resumed: part)'
        line['protocol'] = c['protocol']
        out.append(line)
    return out


PROTOCOLS = {
    'paper': 'each method its own schedule: from-scratch methods train the '
             "baseline's epochs, post-training methods get the trained "
             'baseline plus their own stages (their epochs and time include '
             "the baseline's)",
    'equal': 'equal compute: every method the same total epochs, the '
             "baseline's included for the methods that start from it "
             '(their stages share the rest in the paper\'s proportions)',
}


def write(rows: List[dict], work_dir: str, title: str,
          note: str = '') -> List[str]:
    lines = table(rows)
    columns = []
    for line in lines:
        columns += [k for k in line if k not in columns and k != 'protocol']
    md = [f'# {title}', '']
    if note:
        md += [note, '']
    for protocol in dict.fromkeys(line['protocol'] for line in lines):
        md += [f'## {protocol} protocol', '', PROTOCOLS[protocol] + '.', '',
               '| ' + ' | '.join(columns) + ' |', '|' + '---|' * len(columns)]
        md += ['| ' + ' | '.join(str(l.get(c, '')) for c in columns) + ' |'
               for l in lines if l['protocol'] == protocol]
        md.append('')
    paths = [osp.join(work_dir, n) for n in
             ('table.md', 'table.csv', 'accuracy_vs_flops.png')]
    with open(paths[0], 'w') as f:
        f.write('\n'.join(md))
    with open(paths[1], 'w', newline='') as f:
        writer = csv.DictWriter(f, columns + ['protocol'])
        writer.writeheader()
        writer.writerows(lines)
    plot(rows, paths[2], title)
    return paths


def plot(rows: List[dict], out: str, title: str) -> None:
    """Metric against FLOPs per protocol, mean with the seeds' standard
    deviation as error bars."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    good = [c for c in cells(rows) if 'mean' in c]
    protocols = list(dict.fromkeys(c['protocol'] for c in good))
    bases = {p: next((c for c in good if c['method'] == 'baseline'
                      and c['protocol'] == p), None) for p in protocols}
    protocols = [p for p in protocols if bases[p]]
    if not protocols:
        return
    fig, axes = plt.subplots(1, len(protocols), squeeze=False,
                             figsize=(7 * len(protocols), 4.5))
    for ax, protocol in zip(axes[0], protocols):
        base = bases[protocol]
        mine = [c for c in good if c['protocol'] == protocol]
        for method in dict.fromkeys(c['method'] for c in mine):
            points = sorted((100 * c['flops'] / base['flops'], c['mean'],
                             c['std'] or 0.) for c in mine
                            if c['method'] == method)
            x, y, e = zip(*points)
            ax.errorbar(x, y, yerr=e, fmt='o-' if len(points) > 1 else 's',
                        capsize=3, label=method)
        ax.set_xlabel('FLOPs, % of the baseline')
        ax.set_ylabel(base['name'])
        ax.set_title(f'{title} ({protocol})')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
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
    parser.add_argument('--dcp-ratios', nargs='+', type=float,
                        help="DCP's share of channels removed for each of "
                        '--ratios (its ratio is per layer, not FLOPs)')
    parser.add_argument('--gal-lambdas', nargs='+',
                        help="GAL's configs to run, by lambda (default all)")
    parser.add_argument('--seeds', nargs='+', type=int,
                        help='run every method once per seed '
                        '(randomness.seed), each seed in its own folder, and '
                        'report mean ± std and the range')
    parser.add_argument('--protocols', nargs='+', default=['paper'],
                        choices=list(PROTOCOLS))
    parser.add_argument('--scale', type=float, default=1.,
                        help='multiply every stage\'s epochs (and its '
                        'learning-rate steps) by this')
    parser.add_argument('--equal-epochs', type=int,
                        help='total epochs per method in the equal protocol '
                        '(default: the longest paper total of a method that '
                        'starts from the baseline)')
    parser.add_argument('--equal-seeds', nargs='+', type=int,
                        help='the seeds that run the equal protocol too '
                        '(default: every seed)')
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
    available = method_stages(args.task)
    if args.gal_lambdas and 'gal' in available:
        available['gal'] = [v for v in available['gal'] if any(
            v[0].config.endswith(f'_gal-{lam}.py') for lam in args.gal_lambdas)]
    if args.dcp_ratios and len(args.dcp_ratios) != len(args.ratios):
        raise ValueError('--dcp-ratios needs one value per --ratios')
    methods = ['baseline'] + [m for m in args.methods
                              if m != 'baseline' and m in available]
    missing = sorted(set(args.methods) - set(available))
    if missing:
        print(f'no configs for {missing} in {args.task}: left out')
    protocols = sorted(set(args.protocols), key=list(PROTOCOLS).index)
    rows = []
    for seed in args.seeds or [None]:
        options = list(args.cfg_options)
        seed_dir = work_dir
        if seed is not None:
            options.append(f'randomness.seed={seed}')
            seed_dir = osp.join(work_dir, f'seed_{seed}')
        runs = Runs(args.task, seed_dir, options, args.data_root,
                    per_method, args.scale)
        total = args.equal_epochs or max(
            (runs.baseline_epochs() + sum(
                e or 0 for e in runs.protocol_epochs(m, v, 'paper'))
             for m in methods for v in available[m]
             if any(s.load == 'baseline' for s in v)),
            default=runs.baseline_epochs())
        if 'equal' in protocols:  # an impossible budget fails before training
            for method in methods:
                for stages in available[method]:
                    try:
                        runs.protocol_epochs(method, stages, 'equal', total)
                    except ValueError as error:
                        raise ValueError(f'--equal-epochs {total} for '
                                         f'{method}: {error}') from None
        if 'paper' not in protocols:  # what post-training methods load
            baseline = runs.run('baseline', available['baseline'][0], None,
                                'baseline')
            if 'error' in baseline:
                raise RuntimeError(f'the baseline failed: {baseline["error"]}')
        for protocol in protocols:
            if protocol == 'equal' and args.equal_seeds is not None and \
                    seed not in args.equal_seeds:
                continue
            for method in methods:
                for stages in available[method]:
                    label = method if method != 'gal' else osp.basename(
                        stages[0].config)[:-3]
                    epochs = runs.protocol_epochs(method, stages, protocol,
                                                  total)
                    ratios = [None] if method == 'baseline' or not \
                        stages_ratio(stages) else args.ratios
                    own = dict(zip(args.ratios, args.dcp_ratios or [])) \
                        if method == 'dcp' else {}
                    for ratio in ratios:
                        row = runs.run(method, stages, ratio, label, epochs,
                                       own.get(ratio))
                        if method == 'baseline' and 'error' in row:
                            raise RuntimeError('the baseline failed: '
                                               f'{row["error"]}')
                        rows.append(dict(row, method=shown_name(label),
                                         protocol=protocol, seed=seed))
    seeds = 'seed' + (f's {", ".join(map(str, args.seeds))}'
                      if args.seeds else ' of the configs')
    if 'equal' in protocols and args.equal_seeds is not None:
        seeds += ' (equal protocol: ' + ', '.join(
            map(str, args.equal_seeds)) + ')'
    paths = write(rows, work_dir, args.task, f'Measured with {seeds}; '
                  'mean ± standard deviation over the seeds, and the range.')
    print(open(paths[0]).read())
    print('written:', *paths)
    return rows


def stages_ratio(stages: List[Stage]) -> bool:
    return any(s.ratio for s in stages)


if __name__ == '__main__':
    main()
