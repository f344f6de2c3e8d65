"""The pruning hook inside mmengine's Runner."""
import glob
import os.path as osp

import pytest
import torch

from prunedet.engine import ProgressivePruningHook
from runner_utils import RecordLossHook, build_runner, small_cfg

RPGP = 'classification/resnet20_mnist_rpgp.py'


def hook_of(runner):
    return next(h for h in runner.hooks
                if isinstance(h, ProgressivePruningHook))


def checkpoints(work_dir):
    return glob.glob(osp.join(str(work_dir), '*.pth'))


@pytest.mark.parametrize('option, value, error, message', [
    ('criterion', dict(type='GradNorm'), KeyError,
     "unknown pruning criterion 'GradNorm'"),
    ('target_ratio', 1.0, ValueError, 'target ratio must be in \\[0, 1\\)'),
    ('target_ratio', -0.2, ValueError, 'target ratio must be in \\[0, 1\\)'),
])
def test_bad_hook_options_fail_when_the_runner_is_built(
        tmp_path, mnist_root, option, value, error, message):
    cfg = small_cfg(RPGP, tmp_path, mnist_root)
    cfg.custom_hooks[0][option] = value
    with pytest.raises(error, match=message):
        build_runner(cfg)
    assert not checkpoints(tmp_path)


def test_unknown_layer_name_fails_before_the_first_iteration(
        tmp_path, mnist_root):
    cfg = small_cfg(RPGP, tmp_path, mnist_root)
    cfg.custom_hooks[0]['skip'] = ['backbone.layer9.conv1']
    cfg.custom_hooks.append(dict(type='RecordLossHook'))
    RecordLossHook.losses.clear()
    runner = build_runner(cfg)
    with pytest.raises(ValueError, match=r"skip names layers that do not "
                       r"exist in ImageClassifier: \['backbone.layer9.conv1"):
        runner.train()
    assert not RecordLossHook.losses and not checkpoints(tmp_path)


def test_missing_dataset_files_are_named(tmp_path):
    cfg = small_cfg(RPGP, tmp_path, str(tmp_path / 'empty'))
    runner = build_runner(cfg)
    with pytest.raises(FileNotFoundError, match='train-images-idx3-ubyte'):
        runner.train()


def test_resume_after_hard_prune_continues_like_the_uninterrupted_run(
        tmp_path, mnist_root):
    options = {'custom_hooks.0.interval': 5}
    cfg = small_cfg(RPGP, tmp_path / 'full', mnist_root, **options)
    cfg.custom_hooks.append(dict(type='RecordLossHook'))
    RecordLossHook.losses.clear()
    build_runner(cfg).train()
    full = dict(RecordLossHook.losses)

    ckpt = torch.load(
        osp.join(str(tmp_path / 'full'), 'epoch_2.pth'), weights_only=False)
    state = ckpt['pruning']
    assert state['steps_done'] >= 2 and state['flops_ratio'] < 0.9
    # pruned physically: the saved weights are smaller than the model's
    assert ckpt['state_dict']['backbone.conv1.weight'].shape[0] < 16

    cfg = small_cfg(RPGP, tmp_path / 'full', mnist_root, **options)
    cfg.custom_hooks.append(dict(type='RecordLossHook'))
    cfg.resume = True
    cfg.load_from = osp.join(str(tmp_path / 'full'), 'epoch_2.pth')
    RecordLossHook.losses.clear()
    runner = build_runner(cfg)
    runner.train()
    resumed = dict(RecordLossHook.losses)
    first = min(resumed)
    assert first == 16  # two epochs of 256 images in batches of 32
    assert resumed[first] == pytest.approx(full[first], rel=1e-6)
    assert resumed[max(resumed)] == pytest.approx(full[max(resumed)],
                                                 rel=1e-4)


def test_flops_target_is_met_and_layers_are_logged(tmp_path, mnist_root):
    cfg = small_cfg(RPGP, tmp_path, mnist_root,
                    **{'custom_hooks.0.interval': 4})
    runner = build_runner(cfg)
    runner.train()
    hook = hook_of(runner)
    assert hook.finished
    assert abs(hook.flops_ratio - 0.5) <= 0.02
    log = open(glob.glob(osp.join(str(tmp_path), '*', '*.log'))[0]).read()
    assert 'backbone.layer3.0.conv1: ' in log and 'measured' in log


def test_latency_target_times_its_last_plan_and_reports_what_it_measured(
        tmp_path, mnist_root):
    """A latency target in training: the last step times its plans (a
    copy beside the model, in the log), cuts the one measured nearest the
    target, and the hook reports that plan's measured latency."""
    cfg = small_cfg(RPGP, tmp_path, mnist_root, **{
        'train_cfg.max_epochs': 1, 'custom_hooks.0.interval': 4,
        'custom_hooks.0.target': 'latency', 'custom_hooks.0.target_ratio': .3,
        'custom_hooks.0.latency_cache': None,
        'custom_hooks.0.latency_threads': 1})
    runner = build_runner(cfg)
    runner.train()
    hook = hook_of(runner)
    assert hook.finished
    log = open(glob.glob(osp.join(str(tmp_path), '*', '*.log'))[0]).read()
    line = next(ln for ln in log.splitlines() if 'plans timed' in ln)
    timed = [tuple(map(float, p.split(' -> ')))
             for p in line.split('): ')[1].split(', ')]
    assert 1 <= len(timed) <= 4
    nearest = min(timed, key=lambda p: abs(p[1] - 0.7))
    assert hook.latency_ratio == pytest.approx(nearest[1], abs=1e-3)


@pytest.mark.parametrize('option, value, error, message', [
    ('interval', 2.5, TypeError, 'interval must be an integer or None, '
     'got 2.5'),
    ('target_ratio', 'abc', TypeError, "target_ratio must be a number, "
     "got 'abc'"),
    ('soft_mode', 'freeze', ValueError, 'soft_mode must be one of'),
    ('input_shape', (28, 28), ValueError, 'input_shape is'),
    ('layer_ratios', ['backbone.layer1.0.conv1'], TypeError,
     'layer_ratios is a dict'),
    ('layer_ratios', {'backbone.layer1.0.conv1': 1.5}, ValueError,
     'must be a share in'),
    ('layer_ratios', {'backbone.layer1.0.conv1': 'half'}, TypeError,
     'must be a number'),
])
def test_wrong_option_types_are_named_when_the_runner_is_built(
        tmp_path, mnist_root, option, value, error, message):
    cfg = small_cfg(RPGP, tmp_path, mnist_root)
    cfg.custom_hooks[0][option] = value
    with pytest.raises(error, match=message):
        build_runner(cfg)


LENET = 'classification/lenet5_mnist_rpgp.py'


@pytest.mark.parametrize('config, options, error, message', [
    (LENET, dict(round_to=8), ValueError,
     r'round_to=8 is larger than the channels of .*backbone.features.0 '
     r'\(6\)'),
    (LENET, dict(min_channels=10), ValueError,
     r'min_channels=10 is larger than the channels of'),
    (RPGP, dict(min_channels=16, target_ratio=0.7), 'unreachable',
     r'70.0% fewer FLOPs cannot be reached: the prunable layers hold '
     r'\d+\.\d% of the FLOPs, and with min_channels=16, round_to=1 the '
     r'deepest cut possible removes \d+\.\d%'),
    (RPGP, dict(target='channels', round_to=16, target_ratio=0.6),
     'unreachable', r'60.0% fewer channels cannot be reached'),
])
def test_options_the_model_cannot_satisfy_fail_before_the_first_iteration(
        tmp_path, mnist_root, config, options, error, message):
    from prunedet.pruning.pruner import UnreachableTargetError
    error = UnreachableTargetError if error == 'unreachable' else error
    cfg = small_cfg(config, tmp_path, mnist_root)
    cfg.custom_hooks[0].update(options)
    cfg.custom_hooks.append(dict(type='RecordLossHook'))
    RecordLossHook.losses.clear()
    with pytest.raises(error, match=message):
        build_runner(cfg).train()
    assert not RecordLossHook.losses and not checkpoints(tmp_path)


def test_by_epoch_pruning_in_an_iteration_loop_is_refused(tmp_path,
                                                        mnist_root):
    cfg = small_cfg(RPGP, tmp_path, mnist_root, **{
        'custom_hooks.0.by_epoch': True,
        'custom_hooks.0.interval': 1,
    })
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=8)
    cfg.default_hooks.checkpoint.by_epoch = False
    with pytest.raises(ValueError, match='by_epoch=True, but this config '
                       'trains by iterations'):
        build_runner(cfg).train()
    assert not checkpoints(tmp_path)


def test_criteria_build_in_their_own_scope_without_warnings(monkeypatch):
    """Detection configs run in mmdet's scope; the criterion registry is
    prunedet's and must not be searched for an mmdet child."""
    import mmengine.logging
    from mmengine.registry import DefaultScope
    from prunedet.engine.hooks.progressive_pruning_hook import \
        build_criterion
    messages = []
    monkeypatch.setattr(mmengine.logging, 'print_log',
                        lambda msg, *a, **k: messages.append(msg))
    with DefaultScope.overwrite_default_scope('mmdet'):
        crit = build_criterion(dict(type='GradientNorm'))
    assert type(crit).__name__ == 'GradientNorm'
    assert not [m for m in messages if 'Failed to search' in m], messages


def test_ema_model_is_cut_with_the_model_and_resumes(tmp_path, mnist_root):
    """mmengine's EMAHook keeps a copy of the model: it loses the same
    channels at every hard prune (it crashed with a size mismatch)."""
    cfg = small_cfg(RPGP, tmp_path, mnist_root,
                    **{'custom_hooks.0.interval': 4})
    cfg.custom_hooks.append(dict(type='EMAHook', momentum=0.1))
    runner = build_runner(cfg)
    runner.train()
    ema = next(h for h in runner.hooks
               if type(h).__name__ == 'EMAHook').ema_model
    model = runner.model
    assert hook_of(runner).finished
    shapes = {n: p.shape for n, p in model.named_parameters()}
    assert {n: p.shape for n, p in ema.module.named_parameters()} == shapes
    assert shapes['backbone.conv1.weight'][0] < 16
    # the average follows the live (pruned) tensors
    live = {n: p.data_ptr() for n, p in ema.module.named_parameters()}
    assert {n: p.data_ptr() for n, p in ema.avg_parameters.items()
            if n in live} == live
    # and the EMA differs from the model: it really averages
    assert not torch.equal(ema.module.backbone.conv1.weight,
                           model.backbone.conv1.weight)
    cfg = small_cfg(RPGP, tmp_path, mnist_root, **{
        'custom_hooks.0.interval': 4, 'train_cfg.max_epochs': 4})
    cfg.custom_hooks.append(dict(type='EMAHook', momentum=0.1))
    cfg.resume, cfg.load_from = True, str(tmp_path / 'epoch_3.pth')
    resumed = build_runner(cfg)
    resumed.train()
    assert resumed.epoch == 4
    # tools/test.py on it: EMAHook builds its model before the load
    cfg = small_cfg(RPGP, tmp_path / 'test', mnist_root)
    cfg.custom_hooks.append(dict(type='EMAHook', momentum=0.1))
    cfg.load_from, cfg.strict_load = str(tmp_path / 'epoch_4.pth'), True
    assert build_runner(cfg).test()['accuracy/top1'] > 0.


def test_sync_bn_is_not_converted_again_after_a_hard_prune():
    """Runner.wrap_model converts BN to SyncBN anew, creating modules the
    channel graph does not know; the re-wrap after a hard prune must not."""
    from mmengine.config import Config
    from mmengine.model import convert_sync_batchnorm
    from mmengine.registry import MODEL_WRAPPERS
    from models import build_classifier, graph_of
    from prunedet.engine.runner_model import rewrap
    from prunedet.pruning.surgery import remove_channels

    @MODEL_WRAPPERS.register_module(force=True)
    class FakeDDP(torch.nn.Module):

        def __init__(self, module):
            super().__init__()
            self.module = module

    class Runner:
        cfg = Config(dict(sync_bn='torch', model_wrapper_cfg=None))

        def wrap_model(self, wrapper_cfg, model):
            if self.cfg.get('sync_bn'):
                model = convert_sync_batchnorm(model, self.cfg.sync_bn)
            return FakeDDP(model)

    model, x = build_classifier('resnet20')
    runner = Runner()
    runner.model = runner.wrap_model(None, model)  # as the Runner does
    model = runner.model.module
    model.eval()  # SyncBN runs on the CPU in eval mode only
    graph = graph_of(model, x)
    group = graph.groups()[1]
    remove_channels(graph, group, [0, 1])
    rewrap(runner)
    assert runner.model.module is model and runner.cfg.sync_bn == 'torch'
    live = set(map(id, runner.model.module.modules()))
    assert all(id(m) in live for m in graph.names)
    assert type(model.backbone.layer1[0].bn1).__name__ == 'SyncBatchNorm'
    with torch.no_grad():
        model(x, mode='tensor')


def test_taylor_procedure_removes_a_fixed_count_until_the_target(
        tmp_path, mnist_root):
    cfg = small_cfg('classification/resnet20_mnist_taylor.py', tmp_path,
                    mnist_root, **{
                        'custom_hooks.0.interval': 1,
                        'custom_hooks.0.step_channels': 24,
                        'custom_hooks.0.target_ratio': 0.3,
                    })
    cfg.load_from = None  # the mechanism, not the accuracy
    runner = build_runner(cfg)
    runner.train()
    hook = hook_of(runner)
    assert hook.finished and abs(hook.flops_ratio - 0.7) <= 0.05
    log = open(glob.glob(osp.join(str(tmp_path), '*', '*.log'))[0]).read()
    steps = [line for line in log.splitlines()
             if '24 weakest channels' in line]
    kept = [int(line.split('channels ')[-1].split('/')[0]) for line in steps]
    assert len(steps) >= 2 and steps[0].count('24 hard pruned') == 1
    removed = [a - b for a, b in zip([448] + kept, kept)]
    assert set(removed[:-1]) == {24} and 0 < removed[-1] <= 24
    # stopped when the target was met, before the window's end (iter 12)
    assert hook.steps_done == len(steps) < 12


def test_a_taylor_window_too_short_for_its_step_warns(tmp_path, mnist_root):
    """2 channels per step cannot reach 30% of the FLOPs in the window: the
    last step prunes straight to the target (as documented), and says so
    (a 70% LeNet-5 run collapsed that way without a word)."""
    cfg = small_cfg('classification/resnet20_mnist_taylor.py', tmp_path,
                    mnist_root, **{
                        'custom_hooks.0.interval': 1,
                        'custom_hooks.0.step_channels': 2,
                        'custom_hooks.0.target_ratio': 0.3,
                    })
    cfg.load_from = None
    runner = build_runner(cfg)
    runner.train()
    assert hook_of(runner).finished
    assert abs(hook_of(runner).flops_ratio - 0.7) <= 0.05
    log = open(glob.glob(osp.join(str(tmp_path), '*', '*.log'))[0]).read()
    assert '2 channels per step (step_channels) had not reached the ' \
        'target' in log
