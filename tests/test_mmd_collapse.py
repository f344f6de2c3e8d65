"""MMD collapse (issue 11): the guard that names it in the log, the recipe
that avoids it from scratch, and pruning that does not trust the scores of
a collapsed layer."""
from types import SimpleNamespace

import pytest
import torch
from mmengine.optim import OptimWrapper
from mmengine.registry import HOOKS

from test_domain_adaptation import (  # noqa: F401  (office_root: a fixture)
    _batch, build_tiny_model, office_root)


class _Log:

    def __init__(self):
        self.lines = []

    def warning(self, msg):
        self.lines.append(('warning', msg))

    def info(self, msg):
        self.lines.append(('info', msg))


def fake_runner():
    return SimpleNamespace(
        iter=0, logger=_Log(), train_loop=SimpleNamespace(
            stop_training=False))


def constant_feature_model():
    """The bottleneck outputs ReLU(0 * x + 1) = 1 for every image: what a
    collapsed adaptation head computes."""
    model = build_tiny_model(lambda_ramp='constant')
    with torch.no_grad():
        model.neck.fc.weight.zero_()
        model.neck.fc.bias.fill_(1.)
    return model


def test_the_guard_fires_on_a_constant_feature(office_root):  # noqa: F811
    model = constant_feature_model()
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.))
    collapsed = model.train_step(_batch(office_root), optim)
    assert collapsed['feat_var'] == 0. and collapsed['mmd'].abs() < 1e-6
    healthy = build_tiny_model().train_step(_batch(office_root), optim)
    assert healthy['feat_var'] > 0.

    guard = HOOKS.build(dict(type='CollapseGuardHook', patience=3))
    runner = fake_runner()

    def feed(outputs, times):
        for _ in range(times):
            guard.after_train_iter(runner, runner.iter, None, outputs)
            runner.iter += 1

    feed(healthy, 10)
    feed(dict(healthy, feat_var=healthy['feat_var'] * 0.5), 10)
    assert runner.logger.lines == []  # a smaller variance is not collapse
    feed(collapsed, 2)
    assert runner.logger.lines == []  # not yet `patience` iterations
    feed(collapsed, 5)
    (level, message), = runner.logger.lines  # once, not every iteration
    assert level == 'warning' and 'collapsed at iteration 23' in message
    assert 'variance over the batch is 0' in message and 'warmup_iters' \
        in message
    assert not runner.train_loop.stop_training

    # resumed runs keep what the guard knew
    resumed = HOOKS.build(dict(type='CollapseGuardHook', patience=3))
    checkpoint = {}
    guard.before_save_checkpoint(runner, checkpoint)
    resumed.after_load_checkpoint(runner, checkpoint)
    assert resumed.state_dict() == guard.state_dict()
    assert resumed.collapsed_at == 23 and resumed.peak == pytest.approx(
        float(healthy['feat_var']))

    feed(healthy, 1)
    assert runner.logger.lines[-1][0] == 'info' and 'vary again' in \
        runner.logger.lines[-1][1]

    # stop_training ends the run; a source-only model (no feat_var) is
    # not guarded
    stopper = HOOKS.build(
        dict(type='CollapseGuardHook', patience=1, stop_training=True))
    runner = fake_runner()
    stopper.after_train_iter(runner, 0, None, {'loss': torch.tensor(2.3)})
    assert runner.logger.lines == []
    stopper.after_train_iter(runner, 0, None, collapsed)
    assert runner.train_loop.stop_training
    with pytest.raises(ValueError, match='var_ratio'):
        HOOKS.build(dict(type='CollapseGuardHook', var_ratio=2.))


def test_tcp_does_not_prune_a_layer_that_died(office_root):  # noqa: F811
    """TCP statistics from healthy training, then from a network whose fc7
    outputs are all zero (what the MMD collapse left in issue 11), then the
    pruning step; beside it the same statistics without the fade rule."""
    from prunedet.pruning.groups import ChannelGraph
    from prunedet.pruning.pruner import ChannelPruner
    from prunedet.pruning.tracing import trace_forward
    from prunedet.registry import CRITERIA
    model = build_tiny_model(lambda_ramp='constant')
    model.train()
    graph = ChannelGraph(model, torch.zeros(2, 3, 32, 32),
                         trace_forward(model), ['backbone', 'neck'])
    pruner, stale = (ChannelPruner(
        graph,
        CRITERIA.build(dict(type='TCP', decay=0.25, fade=fade)),
        global_ranking=True) for fade in (1e-3, 0.))
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.))
    batch = _batch(office_root)

    def steps(n):
        for _ in range(n):
            model.train_step(batch, optim)
            for p in (pruner, stale):
                p.criterion.commit(graph.groups())

    steps(2)
    fc7 = model.backbone.classifier[3]
    with torch.no_grad():
        fc7.weight.zero_()
        fc7.bias.fill_(-1.)  # ReLU(-1) = 0 for every image
    steps(6)  # 0.25 ** 6 of the healthy statistics are left
    # without the fade rule, the leftovers of the healthy iterations are
    # normalised back to unit scale and ranked: fc7 would be cut on them
    plan = stale.decide(0.35, True, stale.scores())
    assert not plan['dead'] and plan['groups']['backbone.classifier.3'][1]

    result = pruner.step(0.35, last=True)
    # fc7 and everything below get no gradient; the bottleneck outputs
    # ReLU(bias) for every image, so the target's (MMD) scores fade too
    assert result.dead == list(result.channels)
    assert result.hard == result.soft == 0
    assert all(kept == original for kept, original in result.channels.values())


# --- the shipped from-scratch recipe in the Runner ----------------------

SCRATCH_CFG = 'vgg16_digits_uci2mnist_mmd.py'
FOUR = [0, 1, 2, 3]  # class names as --cfg-options makes them: ints


@pytest.fixture(scope='module')
def shapes_root(tmp_path_factory):
    """Two domains of four silhouettes (amazon- and dslr-styled), 24
    32x32 images per class, in the layout of the digits configs."""
    from prunedet.datasets.synthetic_office import write_domains
    return write_domains(
        str(tmp_path_factory.mktemp('shapes')), {
            'uci': 'amazon',
            'mnist': 'dslr'
        }, [str(c) for c in FOUR],
        images_per_class=24,
        size=32)


def train_from_scratch(root, work_dir, iters, *options):
    """The digits config from scratch on the generated domains, at test
    size (VGG-16 x1/8, 32-unit fc6/fc7 and bottleneck, batches of 8)."""
    import glob
    import os.path as osp

    from conftest import config_path
    from test_tools_and_readme import load_tool
    classes = f'[{",".join(map(str, FOUR))}]'
    runner = load_tool('train').main([
        config_path('domain_adaptation', SCRATCH_CFG), '--work-dir',
        str(work_dir), '--data-root', root, '--cfg-options',
        'model.backbone.widen_factor=0.125', 'model.backbone.fc_channels=32',
        'model.neck.in_channels=32', 'model.neck.out_channels=32',
        'model.head.in_channels=32', 'model.head.num_classes=4',
        f'train_dataloader.dataset.source.classes={classes}',
        f'train_dataloader.dataset.target.classes={classes}',
        f'val_dataloader.dataset.classes={classes}',
        f'test_dataloader.dataset.classes={classes}',
        'train_dataloader.batch_size=8', 'train_dataloader.num_workers=0',
        'val_dataloader.num_workers=0', 'test_dataloader.num_workers=0',
        f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
        f'default_hooks.checkpoint.interval={iters}',
        f'experiment_name=scratch_{abs(hash(str(work_dir)))}', *options
    ])
    hub = runner.message_hub
    log = open(glob.glob(osp.join(str(work_dir), '*', '*.log'))[0]).read()
    guard = next(h for h in runner.hooks
                 if type(h).__name__ == 'CollapseGuardHook')
    return (hub.get_scalar('val/accuracy/top1').current(),
            hub.get_scalar('train/feat_var').current(), guard, log)


def test_the_shipped_scratch_recipe_does_not_collapse(shapes_root, tmp_path):
    """With the shipped from-scratch defaults (BN, source-only warm-up for
    the same share of training, then lambda ramping to mmd_weight) the
    features keep their variance and the target is learned; with the
    settings of issue 11 (no BN, no warm-up, lambda -> 1) the same run
    collapses to chance and the guard says so."""
    from mmengine.config import Config

    from conftest import config_path
    shipped = Config.fromfile(config_path('domain_adaptation', SCRATCH_CFG))
    iters = 150
    warmup = round(iters * shipped.model.warmup_iters /
                   shipped.train_cfg.max_iters)
    assert shipped.model.backbone.batch_norm and 0 < warmup < iters // 2
    top1, feat_var, guard, log = train_from_scratch(
        shapes_root, tmp_path / 'shipped', iters,
        f'model.warmup_iters={warmup}')
    assert guard.collapsed_at is None and 'collapsed' not in log
    assert feat_var > 0.1 * guard.peak
    assert top1 >= 50.  # chance: 25

    top1, feat_var, guard, log = train_from_scratch(
        shapes_root, tmp_path / 'issue11', 80, 'model.warmup_iters=0',
        'model.mmd_weight=1.0', 'model.backbone.batch_norm=False')
    assert guard.collapsed_at is not None
    assert 'CollapseGuardHook: the adapted features have collapsed' in log
    assert feat_var < 1e-6 and top1 == 25.
