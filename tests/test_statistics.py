"""Criterion statistics come from optimizer steps that really happen:
unscaled under AMP, never from a skipped step, never non-finite."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.optim import OptimWrapper
from mmengine.registry import HOOKS, OPTIM_WRAPPERS

from prunedet.engine import ProgressivePruningHook
from runner_utils import build_runner, small_cfg

RPGP = 'classification/resnet20_mnist_rpgp.py'


@OPTIM_WRAPPERS.register_module()
class CPUAmpOptimWrapper(OptimWrapper):
    """mmengine's AmpOptimWrapper without its CUDA check: a real GradScaler
    on the CPU (scale 1024). ``overflow_at`` makes one backward pass inf, as
    an fp16 overflow would."""

    def __init__(self, overflow_at=(), **kwargs):
        super().__init__(**kwargs)
        self.loss_scaler = torch.amp.GradScaler('cpu', init_scale=1024.)
        self.overflow_at = set(overflow_at)
        self.calls = 0

    def backward(self, loss, **kwargs):
        self.calls += 1
        if self.calls in self.overflow_at:
            loss = loss * float('inf')
        self.loss_scaler.scale(loss).backward(**kwargs)

    def step(self, **kwargs):
        self.loss_scaler.unscale_(self.optimizer)
        self.loss_scaler.step(self.optimizer, **kwargs)
        self.loss_scaler.update()


@HOOKS.register_module()
class StopBeforePruningHook(Hook):
    """Keeps the pruning hook's statistics of the first ``n`` iterations."""
    priority = 'LOWEST'
    seen = {}

    def __init__(self, n):
        self.n = n

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if runner.iter + 1 == self.n:
            hook = next(h for h in runner.hooks
                        if isinstance(h, ProgressivePruningHook))
            crit = hook.criterion
            StopBeforePruningHook.seen = dict(
                scores={k: v.clone() for k, v in crit.scores.items()},
                updates=crit.num_updates, skipped=crit.num_skipped)
            raise KeyboardInterrupt  # enough


def statistics(tmp_path, mnist_root, criterion, wrapper=None, n=5):
    cfg = small_cfg(RPGP, tmp_path, mnist_root, **{
        'custom_hooks.0.criterion': dict(type=criterion),
        'custom_hooks.0.interval': 100,
        'train_cfg.max_epochs': 4,
    })
    if wrapper:
        cfg.optim_wrapper.update(wrapper)
    cfg.custom_hooks.append(dict(type='StopBeforePruningHook', n=n))
    with pytest.raises(KeyboardInterrupt):
        build_runner(cfg).train()
    return StopBeforePruningHook.seen


@pytest.mark.parametrize('criterion', ['TaylorActivation', 'GradientNorm'])
def test_amp_loss_scale_never_reaches_the_scores(tmp_path, mnist_root,
                                                 criterion):
    plain = statistics(tmp_path / 'plain', mnist_root, criterion)
    amp = statistics(tmp_path / 'amp', mnist_root, criterion,
                     dict(type='CPUAmpOptimWrapper'))
    assert plain['updates'] == amp['updates'] == 5
    for name, score in plain['scores'].items():
        assert score.abs().sum() > 0
        torch.testing.assert_close(amp['scores'][name], score, rtol=1e-3,
                                   atol=1e-9)


@pytest.mark.parametrize('criterion', ['TaylorActivation', 'GradientNorm'])
def test_a_step_the_scaler_skips_adds_nothing(tmp_path, mnist_root,
                                              criterion):
    seen = statistics(tmp_path, mnist_root, criterion,
                      dict(type='CPUAmpOptimWrapper', overflow_at=[3]))
    assert seen['updates'] == 4  # 5 iterations, one step skipped
    for score in seen['scores'].values():
        assert torch.isfinite(score).all() and score.abs().sum() > 0


def test_nan_training_postpones_pruning_then_stops_with_a_clear_error(
        tmp_path, mnist_root):
    cfg = small_cfg(RPGP, tmp_path, mnist_root, **{
        'optim_wrapper.optimizer.lr': 1e6,
        'custom_hooks.0.interval': 3,
        'train_cfg.max_epochs': 2,
    })
    runner = build_runner(cfg)
    with pytest.raises(RuntimeError, match='last pruning step .* cannot '
                       'choose channels.*diverged'):
        runner.train()
    log = open(glob.glob(osp.join(str(tmp_path), '*', '*.log'))[0]).read()
    assert 'non-finite pruning statistics' in log
    assert 'Pruning step postponed' in log
    hook = next(h for h in runner.hooks
                if isinstance(h, ProgressivePruningHook))
    # only the step before the divergence (finite statistics of the first
    # iteration) pruned; every later one waited for finite statistics
    first_nan = log.index('non-finite pruning statistics')
    assert 'Pruning step 2/' not in log[first_nan:]
    assert hook.steps_done <= 1 < hook.schedule.num_steps
