"""The method table is built from finished runs, and runs are not repeated."""
import csv
import json
import os
import os.path as osp

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
