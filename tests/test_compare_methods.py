"""The method table is built from finished runs, and runs are not repeated."""
import csv
import json
import os
import os.path as osp

import pytest

from test_tools_and_readme import load_tool

TINY = [
    'train_cfg.max_epochs=1', 'train_dataloader.batch_size=64',
    'train_dataloader.num_workers=0', 'val_dataloader.num_workers=0',
    'test_dataloader.num_workers=0'
]


def compare(tmp_path, mnist_root, *ratios):
    return load_tool('analysis/compare_methods').main([
        'classification/resnet20_mnist', '--methods', 'baseline', 'rpgp',
        '--ratios', *map(str, ratios), '--work-dir',
        str(tmp_path), '--data-root', mnist_root, '--cfg-options', *TINY
    ])


def test_table_from_two_runs_then_nothing_is_run_again(tmp_path, mnist_root):
    rows = compare(tmp_path, mnist_root, 0.5, 1.5)
    base, rpgp, bad = rows
    assert (base['method'], rpgp['method'], bad['method']) == \
        ('baseline', 'rpgp', 'rpgp')
    # the measured FLOPs, not the target, and the test metric of each run
    assert abs(rpgp['flops'] / base['flops'] - 0.5) <= 0.02
    assert rpgp['params'] < base['params']
    for row in (base, rpgp):
        metrics = json.load(open(osp.join(
            str(tmp_path), 'baseline' if row is base else 'rpgp/0.5',
            'metrics.json')))
        assert metrics['accuracy/top1'] == row['accuracy/top1']
    # a failed run is a row saying why, not a crash and not a gap
    assert 'target ratio must be in [0, 1)' in bad['error']
    with open(osp.join(str(tmp_path), 'table.csv')) as f:
        table = list(csv.DictReader(f))
    assert [r['method'] for r in table] == ['baseline', 'rpgp', 'rpgp']
    assert table[0]['gap'] == '+0.00' and table[1]['FLOPs %'] in (
        '49.6', '49.7', '50.0', '50.3', '50.4')
    assert table[2]['result'].startswith('failed: ValueError')
    md = open(osp.join(str(tmp_path), 'table.md')).read()
    assert '| rpgp | 50 |' in md and 'failed' in md
    assert osp.getsize(osp.join(str(tmp_path), 'accuracy_vs_flops.png')) > 5e3
    # again: finished runs are collected, not trained again
    done = osp.join(str(tmp_path), 'rpgp', '0.5', 'result.json')
    stamp = os.stat(done).st_mtime_ns
    logs = sorted(os.listdir(osp.join(str(tmp_path), 'rpgp', '0.5')))
    again = compare(tmp_path, mnist_root, 0.5)
    assert os.stat(done).st_mtime_ns == stamp
    assert sorted(os.listdir(osp.join(str(tmp_path), 'rpgp', '0.5'))) == logs
    assert again[1]['flops'] == rpgp['flops']


def test_a_stage_failing_before_the_last_one_is_a_row(tmp_path,
                                                     monkeypatch):
    """DCP's selection stage has no training loop: the ``train_cfg.*``
    options of the training stages stay away from it, and when it fails
    (here: on purpose) the method is a failed row, not a crashed tool."""
    tool = load_tool('analysis/compare_methods')
    stages = tool.method_stages('classification/resnet20_mnist')['dcp'][0]
    runs = tool.Runs('classification/resnet20_mnist', str(tmp_path),
                     ['train_cfg.max_epochs=1', 'train_dataloader.batch_size=8'])
    seen = []

    def train(args):
        options = args[args.index('--cfg-options') + 1:]
        seen.append(options)
        if len(seen) == 2:
            raise RuntimeError('selection diverged')
        work_dir = args[args.index('--work-dir') + 1]
        with open(osp.join(work_dir, 'last_checkpoint'), 'w') as f:
            f.write(osp.join(work_dir, 'epoch_1.pth'))

    monkeypatch.setattr(runs, '_tool', lambda name: train)
    baseline = osp.join(str(tmp_path), 'baseline', 'epoch_1.pth')
    runs.baseline = dict(checkpoint=baseline, seconds=1.)
    row = runs.run('dcp', stages, 0.5, 'dcp')
    assert row['error'] == 'RuntimeError: selection diverged'
    assert 'train_cfg.max_epochs=1' in seen[0]
    # stage 1 fine-tunes the trained baseline (DCP's Algorithm 1)
    assert f'load_from={baseline}' in seen[0]
    assert [o for o in seen[1] if o.startswith('train_cfg.')] == \
        ['train_cfg.pruning_rate=0.5']  # the stage's own ratio only
    assert 'train_dataloader.batch_size=8' in seen[1]
    failed = osp.join(str(tmp_path), 'dcp', '0.5', 'stage3', 'failed.json')
    assert 'selection diverged' in json.load(open(failed))['error']


def test_no_cfg_options_and_a_tool_exiting_are_handled(tmp_path, monkeypatch):
    """Without --cfg-options the tools get none (argparse refuses an empty
    one: the demo table crashed after its baseline), and a tool that exits
    makes a failed row."""
    tool = load_tool('analysis/compare_methods')
    runs = tool.Runs('demo/faster_rcnn_vgg16_shapes', str(tmp_path), [])
    calls = []

    def fake(name):
        def main(args):
            calls.append((name, args))
            if name == 'train':
                work_dir = args[args.index('--work-dir') + 1]
                with open(osp.join(work_dir, 'last_checkpoint'), 'w') as f:
                    f.write(osp.join(work_dir, 'iter_1.pth'))
                return None
            raise SystemExit(2)
        return main

    monkeypatch.setattr(runs, '_tool', fake)
    stages = tool.method_stages('demo/faster_rcnn_vgg16_shapes')['baseline']
    row = runs.run('baseline', stages[0], None, 'baseline')
    assert row['error'] == 'SystemExit: 2'
    assert [name for name, _ in calls] == ['train', 'test']
    assert '--cfg-options' not in calls[1][1]


def test_an_interrupted_stage_goes_on_from_its_checkpoint(tmp_path,
                                                          monkeypatch):
    """A stage killed after a checkpoint is resumed, not trained from the
    start again, and its row says that its time is only the resumed part."""
    tool = load_tool('analysis/compare_methods')
    runs = tool.Runs('classification/resnet20_mnist', str(tmp_path), [])
    calls = []

    def fake(name):
        def main(args):
            calls.append((name, args))
            work_dir = args[args.index('--work-dir') + 1]
            with open(osp.join(work_dir, 'last_checkpoint'), 'w') as f:
                f.write(osp.join(work_dir, 'epoch_1.pth'))
            if len(calls) == 1:
                raise KeyboardInterrupt  # killed after its first epoch
        return main

    monkeypatch.setattr(runs, '_tool', fake)
    stages = tool.method_stages('classification/resnet20_mnist')['rpgp'][0]
    with pytest.raises(KeyboardInterrupt):
        runs.run('rpgp', stages, 0.5, 'rpgp')
    assert '--resume' not in calls[0][1]
    monkeypatch.setattr(runs, 'evaluate', lambda *a: {'accuracy/top1': 90.})
    row = runs.run('rpgp', stages, 0.5, 'rpgp')
    assert '--resume' in calls[1][1] and row['resumed']
    base = dict(method='baseline', ratio=None, seconds=2., params=2,
                flops=2, **{'accuracy/top1': 91.})
    lines = tool.table([base, dict(row, params=1, flops=1)])
    assert lines[1]['train time (s)'].endswith('(resumed: part)')
    assert lines[1]['time / baseline'].endswith('(resumed: part)')
    assert not lines[0]['train time (s)'].endswith('(resumed: part)')
    # a resumed baseline makes every ratio to it a part, not others' times
    lines = tool.table([dict(base, resumed=True),
                        dict(row, params=1, flops=1, resumed=False)])
    assert lines[1]['time / baseline'].endswith('(resumed: part)')
    assert not lines[1]['train time (s)'].endswith('(resumed: part)')


def test_fewer_epochs_move_the_learning_rate_steps_with_them():
    """An 8-epoch run of a 20-epoch schedule decays at the same fractions
    (milestones 10, 15 -> 4, 6); a step that would fall on or after the end
    is dropped, not left past it."""
    tool = load_tool('analysis/compare_methods')
    cfg = dict(train_cfg=dict(max_epochs=20),
               param_scheduler=dict(type='MultiStepLR', by_epoch=True,
                                    milestones=[10, 15]))
    assert tool.schedule_options(cfg, 8) == [
        'train_cfg.max_epochs=8', 'param_scheduler.milestones=[4,6]']
    assert tool.schedule_options(cfg, 20) == []
    assert tool.schedule_options(cfg, 2) == [
        'train_cfg.max_epochs=2', 'param_scheduler.milestones=[1]']
    listed = dict(train_cfg=dict(max_epochs=12), param_scheduler=[
        dict(type='LinearLR', by_epoch=False, end=500),  # warm-up: iters
        dict(type='CosineAnnealingLR', by_epoch=True, T_max=12, begin=0,
             end=12)])
    assert tool.schedule_options(listed, 6) == [
        'train_cfg.max_epochs=6', 'param_scheduler.1.T_max=6',
        'param_scheduler.1.end=6']


def test_equal_compute_splits_the_budget_and_charges_the_baseline():
    tool = load_tool('analysis/compare_methods')
    assert tool.split_epochs([8, None, 4], 9) == [6, None, 3]
    assert tool.split_epochs([1, 30], 4) == [1, 3]  # at least one each
    assert sum(e or 0 for e in tool.split_epochs([5, 3, 3], 7)) == 7
    with pytest.raises(ValueError, match='2 training stages'):
        tool.split_epochs([4, 4], 1)
    runs = tool.Runs('classification/lenet5_fashion_mnist', '.', [],
                     scale=0.4)
    stages = tool.method_stages('classification/lenet5_fashion_mnist')
    assert runs.baseline_epochs() == 8  # 20 x 0.4
    # from scratch: all of the budget; from the baseline: what it leaves
    assert runs.protocol_epochs('rpgp', stages['rpgp'][0], 'equal', 14) \
        == [14]
    taylor = runs.protocol_epochs('taylor', stages['taylor'][0], 'equal', 14)
    assert taylor == [6]
    dcp = runs.protocol_epochs('dcp', stages['dcp'][0], 'equal', 14)
    assert dcp[1] is None and dcp[0] + dcp[2] == 6


def _row(method, acc, seed, ratio=0.7):
    return dict(method=method, ratio=ratio, seed=seed, protocol='paper',
                params=1e4, flops=1e6, seconds=10., epochs=8,
                **{'accuracy/top1': acc})


def test_cells_report_mean_std_range_and_what_the_seeds_cannot_tell_apart():
    tool = load_tool('analysis/compare_methods')
    rows = [_row('baseline', a, s, None) for s, a in enumerate((90, 91, 92))]
    rows += [_row('rpgp', a, s) for s, a in enumerate((88., 89., 90.))]
    rows += [_row('l1', a, s) for s, a in enumerate((89.5, 90.5, 91.5))]
    rows += [_row('psfp', a, s) for s, a in enumerate((80., 81., 82.))]
    rows.append(dict(_row('taylor', 0, 0), error='RuntimeError: boom'))
    cells = {c['method']: c for c in tool.cells(rows)}
    l1, rpgp, psfp = cells['l1'], cells['rpgp'], cells['psfp']
    assert abs(l1['mean'] - 9.5) < 1e-9  # error = 100 - accuracy
    assert abs(l1['std'] - 1.) < 1e-9 and (l1['low'], l1['high']) == (8.5, 10.5)
    assert l1['spread'] == 'best'
    assert rpgp['spread'] == 'within spread of l1'  # 10-12 overlaps 8.5-10.5
    assert psfp['spread'] == ''  # 18-20: apart
    assert cells['taylor']['ok'] == 0 and 'error' in cells['taylor']
    lines = {l['method']: l for l in tool.table(rows)}
    assert lines['rpgp']['error (%)'] == '11.00 ± 1.00'
    assert lines['rpgp']['range'] == '10.00-12.00'
    assert lines['rpgp']['gap'] == '+2.00' and lines['rpgp']['seeds'] == '3/3'
    assert lines['taylor']['result'].startswith('failed')


def test_an_equal_budget_that_leaves_a_method_nothing_fails_before_training(
        tmp_path):
    """8 epochs in all leave Taylor nothing after the 8-epoch baseline it
    starts from: the tool says so before any run starts."""
    tool = load_tool('analysis/compare_methods')
    with pytest.raises(ValueError, match='--equal-epochs 8 for taylor'):
        tool.main(['classification/lenet5_fashion_mnist', '--scale', '0.4',
                   '--protocols', 'paper', 'equal', '--equal-epochs', '8',
                   '--work-dir', str(tmp_path)])
    assert os.listdir(str(tmp_path)) == []


def test_a_gal_row_is_named_after_its_lambda_and_others_after_the_method():
    shown = load_tool('analysis/compare_methods').shown_name
    assert shown('lenet5_fashion_mnist_gal-0.05') == 'GAL λ=0.05'
    assert shown('resnet20_fashion_mnist_gal-0.6') == 'GAL λ=0.6'
    assert shown('rpgp_code') == 'rpgp_code'
