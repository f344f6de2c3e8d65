"""The user-facing entry points: tools/train.py, tools/test.py, README."""
import glob
import importlib.util
import os.path as osp
import re

import subprocess
import sys

import pytest
import torch

from conftest import ROOT, config_path
from runner_utils import build_runner, small_cfg


def load_tool(name):
    spec = importlib.util.spec_from_file_location(
        f'tool_{name}', osp.join(ROOT, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_then_test_a_pruned_checkpoint(tmp_path, mnist_root):
    cfg = config_path('classification', 'resnet20_mnist_rpgp.py')
    options = [
        'train_cfg.max_epochs=2', 'train_dataloader.batch_size=32',
        'train_dataloader.num_workers=0', 'val_dataloader.num_workers=0',
        'test_dataloader.num_workers=0', 'custom_hooks.0.interval=3',
        f'experiment_name=tools_{id(tmp_path)}'
    ]
    runner = load_tool('train').main([
        cfg, '--data-root', mnist_root, '--work-dir',
        str(tmp_path), '--cfg-options', *options
    ])
    val = runner.message_hub.get_scalar('val/accuracy/top1').current()
    ckpt = osp.join(str(tmp_path), 'epoch_2.pth')
    state = torch.load(ckpt, weights_only=True)['state_dict']
    assert state['backbone.layer1.0.conv1.weight'].shape[0] < 16
    metrics = load_tool('test').main([
        cfg, ckpt, '--data-root', mnist_root, '--work-dir',
        str(tmp_path / 'test'), '--cfg-options', *options
    ])
    # the checkpoint alone gives what validation gave at the end of training
    assert metrics['accuracy/top1'] == pytest.approx(val, abs=1e-6)


def test_readme_criterion_example_registers_and_prunes(tmp_path, mnist_root):
    readme = open(osp.join(ROOT, 'README.md')).read()
    code = re.search(r'<!-- criterion-example -->\n```python\n(.*?)```',
                     readme, re.S).group(1)
    namespace = {}
    exec(code, namespace)
    cfg = small_cfg('classification/resnet20_mnist_rpgp.py', tmp_path,
                    mnist_root, **{'train_cfg.max_epochs': 1})
    cfg.custom_hooks[0].update(criterion=dict(type='BNScale'), interval=2)
    runner = build_runner(cfg)
    runner.train()
    hook = runner.hooks[[type(h).__name__ for h in runner.hooks
                         ].index('ProgressivePruningHook')]
    assert type(hook.criterion).__name__ == 'BNScale' and hook.finished
    assert glob.glob(osp.join(str(tmp_path), '*.pth'))


def test_help_answers_without_importing_torch():
    """--help must not wait for torch, mmdet and mmpretrain to import."""
    code = ('import runpy, sys\n'
            'sys.argv = ["train.py", "--help"]\n'
            'try:\n'
            '    runpy.run_path("tools/train.py", run_name="__main__")\n'
            'except SystemExit:\n'
            '    pass\n'
            'print("torch" in sys.modules, "mmdet" in sys.modules)')
    out = subprocess.run([sys.executable, '-c', code], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    assert 'usage: train.py' in out and out.strip().endswith('False False')


def test_auto_scale_lr_without_a_base_batch_size_is_named(tmp_path):
    """(It raised AttributeError on the domain-adaptation configs.)"""
    cfg = tmp_path / 'no_scale.py'
    base = config_path('classification', 'resnet20_mnist.py')
    cfg.write_text(f'_base_ = [{base!r}]\nauto_scale_lr = None\n')
    with pytest.raises(ValueError, match='has no auto_scale_lr.base_batch'):
        load_tool('train').main([str(cfg), '--auto-scale-lr', '--work-dir',
                                 str(tmp_path)])
