"""The user-facing entry points: tools/train.py, tools/test.py, README."""
import glob
import importlib.util
import os.path as osp
import re

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
    load_tool('train').main([
        cfg, '--data-root', mnist_root, '--work-dir',
        str(tmp_path), '--cfg-options', *options
    ])
    ckpt = osp.join(str(tmp_path), 'epoch_2.pth')
    state = torch.load(ckpt, weights_only=False)['state_dict']
    assert state['backbone.layer1.0.conv1.weight'].shape[0] < 16
    metrics = load_tool('test').main([
        cfg, ckpt, '--data-root', mnist_root, '--work-dir',
        str(tmp_path / 'test'), '--cfg-options', *options
    ])
    assert 0 <= metrics['accuracy/top1'] <= 100


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
