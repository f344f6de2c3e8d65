"""The hook in a stock OpenMMLab config, and what the channel graph refuses.

A user adds two lines to the config they already train; layers that cannot
lose channels without changing what the others compute are kept (with a log
line), and a model the graph cannot trace in time fails naming where.
"""
import time

import pytest
import torch
import torch.nn as nn

from prunedet.pruning.deadline import GraphBuildTimeout
from prunedet.pruning.groups import ChannelGraph
from prunedet.pruning.verify import verify_graph
from test_tools_and_readme import load_tool

# what the README tells a user to add to any mmdet/mmpretrain config
TWO_LINES = """
custom_imports = dict(imports=['prunedet'], allow_failed_imports=False)
custom_hooks = [dict(type='ProgressivePruningHook', target='flops',
                     target_ratio=0.4, by_epoch=False, interval=2)]
"""


def test_two_lines_prune_a_stock_mmpretrain_config(tmp_path, cifar_root):
    config = tmp_path / 'resnet18_cifar_rpgp.py'
    config.write_text("_base_ = ['mmpretrain::resnet/resnet18_8xb16_cifar10.py']"
                      + TWO_LINES)
    options = [
        'train_dataloader.dataset.type=OfflineCIFAR10',
        'train_dataloader.dataset.indices=32',
        'val_dataloader.dataset.type=OfflineCIFAR10',
        'val_dataloader.dataset.indices=16',
        'test_dataloader.dataset.type=OfflineCIFAR10',
        'test_dataloader.dataset.indices=16', 'test_dataloader.num_workers=0',
        'train_dataloader.batch_size=8', 'val_dataloader.batch_size=8',
        'train_dataloader.num_workers=0', 'val_dataloader.num_workers=0',
        'train_cfg.max_epochs=1', 'default_hooks.logger.interval=2',
        f'experiment_name=two_lines_{id(tmp_path)}'
    ]
    runner = load_tool('train').main([
        str(config), '--data-root', cifar_root, '--work-dir',
        str(tmp_path / 'work'), '--cfg-options', *options
    ])
    hook = next(h for h in runner.hooks
                if type(h).__name__ == 'ProgressivePruningHook')
    assert hook.finished and abs(hook.flops_ratio - 0.6) <= 0.02
    assert runner.model.backbone.layer1[0].conv1.out_channels < 64
    # the pruned checkpoint is evaluated from the stock config
    metrics = load_tool('test').main([
        str(config), str(tmp_path / 'work' / 'epoch_1.pth'), '--data-root',
        cifar_root, '--work-dir', str(tmp_path / 'test'), '--cfg-options',
        *options
    ])
    assert 0. <= metrics['accuracy/top1'] <= 100.


def test_stock_shufflenet_v2_trains_through_two_flops_steps(tmp_path,
                                                           cifar_root):
    """mmpretrain's own ShuffleNet-V2 at 64x64, 40% of the FLOPs in two
    steps: the second step cuts a graph the first one pruned (its concat
    offsets used to be stale there, and the next forward pass crashed)."""
    pipeline = [dict(type='Resize', scale=(64, 64)), dict(type='PackInputs')]
    data = dict(type='OfflineCIFAR10', data_root=cifar_root, split='train',
                indices=16, pipeline=pipeline)
    config = tmp_path / 'shufflenet_v2_rpgp.py'
    config.write_text(
        "_base_ = ['mmpretrain::shufflenet_v2/"
        "shufflenet-v2-1x_16xb64_in1k.py']" + TWO_LINES +
        f'train_dataloader = dict(batch_size=4, num_workers=0, '
        f'persistent_workers=False, dataset=dict(_delete_=True, **{data!r}))\n'
        'train_cfg = dict(by_epoch=True, max_epochs=1, val_interval=1)\n'
        'param_scheduler = None\n'  # the stock warm-up outlasts the run
        'val_dataloader = val_cfg = val_evaluator = None\n'
        'test_dataloader = test_cfg = test_evaluator = None\n'
        f'experiment_name = "shufflenet_{id(tmp_path)}"\n')
    runner = load_tool('train').main(
        [str(config), '--work-dir', str(tmp_path / 'work')])
    hook = next(h for h in runner.hooks
                if type(h).__name__ == 'ProgressivePruningHook')
    assert hook.finished and hook.steps_done == 2
    assert abs(hook.flops_ratio - 0.6) <= 0.02, hook.flops_ratio
    runner.model.eval()
    with torch.no_grad():  # the pruned model still runs
        assert runner.model(torch.randn(1, 3, 64, 64)).shape == (1, 1000)


class _Classifier(nn.Sequential):

    def forward(self, x, mode='tensor'):
        return super().forward(x)


def _net(middle: nn.Module) -> nn.Module:
    return _Classifier(
        nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), middle,
        nn.Conv2d(16, 8, 3, padding=1), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Linear(8, 4))


def _graph(model, **kwargs):
    return ChannelGraph(model, torch.randn(2, 3, 8, 8),
                        lambda m, x: m(x, mode='tensor'), **kwargs)


def test_grouped_convs_and_group_norms_keep_their_channels(logged):
    graph = _graph(_net(nn.Conv2d(16, 16, 3, padding=1, groups=4)))
    assert '0' in graph.unprunable and '3' in graph.unprunable
    assert 'grouped convolution (groups=4)' in graph.unprunable['0']
    assert 'the channels of 0 are kept' in logged()
    assert [graph.names[r] for r in graph.roots] == ['4']  # after it: fine
    graph = _graph(_net(nn.GroupNorm(4, 16)))
    assert 'GroupNorm (4 groups)' in graph.unprunable['0']


def test_depthwise_convs_are_pruned_with_their_inputs():
    model = _net(nn.Conv2d(16, 16, 3, padding=1, groups=16))
    graph = _graph(model)
    assert not graph.unprunable
    group, = [g for g in graph.groups()
              if '0' in {graph.names[s.module] for s in g.producers}]
    assert {'0', '1', '3'} <= {graph.names[s.module] for s in group.producers}
    assert '4' in {graph.names[s.module] for s in group.consumers}


class _Spin(nn.Module):
    """A forward that keeps Python busy, like a tracer lost in a loop."""

    def forward(self, x):
        start = time.time()
        while time.time() - start < 60:
            pass
        return x


def test_graph_building_stops_at_its_time_budget_naming_the_module():
    start = time.time()
    with pytest.raises(GraphBuildTimeout,
                       match=r'more than 0.5 s .* in 3.*skip=\[\.\.\.\]'):
        _graph(_net(_Spin()), timeout=0.5)
    assert time.time() - start < 10


class _TwoBranches(nn.Module):
    """Two convs concatenated, read by one conv: its input side holds
    channels of two groups."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Conv2d(3, 24, 3, padding=1)
        self.c = nn.Conv2d(32, 16, 3, padding=1)
        self.head = nn.Linear(16, 4)

    def forward(self, x, mode='tensor'):
        y = self.c(torch.cat([self.a(x), self.b(x)], 1).relu())
        return self.head(y.mean((2, 3)))


def test_flops_estimate_of_a_concat_reader_is_exact():
    from prunedet.pruning.flops import FlopsEstimate, measure_flops
    from prunedet.pruning.surgery import remove_channels
    model = _TwoBranches()
    x = torch.randn(1, 3, 16, 16)
    forward = lambda m, x: m(x, mode='tensor')  # noqa: E731
    graph = ChannelGraph(model, x, forward)
    total, per_layer = measure_flops(model, x, forward)
    estimate = FlopsEstimate(total, per_layer, graph.groups())
    keep = {'a': 2, 'b': 20, 'c': 10}
    predicted = estimate(keep)
    for group in graph.groups():
        remove_channels(graph, group,
                        range(keep[group.name], group.num_channels))
    assert (model.c.in_channels, model.c.out_channels) == (22, 10)
    assert predicted == pytest.approx(measure_flops(model, x, forward)[0])


class _After(nn.Module):
    """conv-BN-ReLU, then ``op`` on the channels, then a conv and a head."""

    def __init__(self, op, width: int = 6, fc_in: int = 5):
        super().__init__()
        self.op = op
        self.a = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width),
            nn.ReLU())
        self.d = nn.Conv2d(width, 5, 3, padding=1) if fc_in == 5 else None
        self.fc = nn.Linear(fc_in, 3)

    def forward(self, x, mode='tensor'):
        y = self.op(self.a(x))
        return self.fc(self.d(y).mean((2, 3)) if self.d is not None else y)


# ops that move or mix channels in ways the traced graph cannot model
WRONG_OPS = {
    'roll': (lambda y: torch.roll(y, 1, 1), 5),
    'flip': (lambda y: y.flip(1), 5),
    'softmax over channels': (lambda y: y.softmax(1), 5),
    'permute then flatten': (lambda y: nn.functional.adaptive_avg_pool2d(
        y, 2).permute(0, 2, 3, 1).reshape(y.shape[0], -1), 24),
    'index with a fixed permutation': (
        lambda y: y[:, torch.tensor([5, 4, 3, 2, 1, 0])], 5),
    'split of constant size': (
        lambda y: torch.cat(torch.split(y, 3, 1)[::-1], 1), 5),
}


@pytest.mark.parametrize('op', list(WRONG_OPS))
def test_groups_whose_removal_is_not_their_masking_are_kept(op, logged):
    fn, fc_in = WRONG_OPS[op]
    model = _After(fn, fc_in=fc_in).eval()
    graph = _graph(model)
    assert 'a.0' in [graph.names[r] for r in graph.roots]  # unseen by tracing
    assert verify_graph(graph, torch.randn(1, 3, 8, 8),
                        lambda m, x: m(x, mode='tensor')) == ['a.0']
    assert 'a.0' not in [graph.names[r] for r in graph.roots]
    assert 'is not what zeroing it is' in graph.unprunable['a.0']
    assert 'the channels of a.0 are kept' in logged()
    assert model.a[0].out_channels == 6  # the model itself is untouched


def test_verification_passes_groups_that_prune_exactly():
    model = _net(nn.Conv2d(16, 16, 3, padding=1, groups=16)).eval()
    graph = _graph(model)
    roots = list(graph.roots)
    assert verify_graph(graph, torch.randn(1, 3, 8, 8),
                        lambda m, x: m(x, mode='tensor')) == []
    assert graph.roots == roots


class _Twice(nn.Module):
    """One conv's channels concatenated with themselves: its group reaches
    both parts of the concat, the second at an offset that moves with
    every prune."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.c = nn.Conv2d(16, 4, 3, padding=1)

    def forward(self, x, mode='tensor'):
        h = self.a(x)
        return self.c(torch.cat([h, h.relu()], 1)).mean((2, 3))


@pytest.mark.parametrize('net,stale_group', [(_Twice, 'a'),
                                              (_TwoBranches, 'b')])
def test_verification_keeps_what_goes_stale_after_a_cut(
        net, stale_group, monkeypatch):
    """Bookkeeping that goes stale after a prune shows only at the next
    step (ShuffleNet's concat offsets did, and training crashed after its
    second pruning step), or only once another group was cut (b's offset
    after a's): the copy is cut twice, group on top of group, and a group
    whose cut is then not its masking keeps its channels."""
    from prunedet.pruning import coupling
    model, x = net().eval(), torch.randn(1, 3, 8, 8)
    forward = lambda m, x: m(x, mode='tensor')  # noqa: E731
    assert verify_graph(_graph(model), x, forward) == []
    built = {}

    def stale(self, idxs):  # offsets as they were when the graph was built
        lo = sum(built.setdefault(id(self.op), list(
            self.op.concat_sizes))[:self.part])
        if self.reverse:
            return [type(i)(i.idx - lo, i.root_idx) for i in idxs
                    if lo <= i.idx < lo + self.op.concat_sizes[self.part]]
        return [type(i)(i.idx + lo, i.root_idx) for i in idxs]

    monkeypatch.setattr(coupling._CatPart, '__call__', stale)
    graph = _graph(model)
    assert verify_graph(graph, x, forward) == [stale_group]
    assert 'is not what zeroing it is' in graph.unprunable[stale_group]


def test_verification_of_a_training_model_leaves_it_as_it_was():
    """The hook verifies at the first iteration, while the model trains: a
    training forward pass there moved its BN statistics (and failed on one
    sample of 1x1 maps, MobileNet-V2 at 32x32)."""
    model = _net(nn.Identity()).train()
    graph = _graph(model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert verify_graph(graph, torch.randn(1, 3, 8, 8),
                        lambda m, x: m(x, mode='tensor')) == []
    assert model.training
    assert all(torch.equal(v, before[k])
               for k, v in model.state_dict().items())


@pytest.mark.parametrize('layer', ['group_norm', 'prelu'])
def test_per_channel_norms_and_slopes_prune_and_rebuild(layer):
    from prunedet.pruning.architecture import (record_architecture,
                                               restore_architecture)
    from prunedet.pruning.soft import mask_channels
    from prunedet.pruning.surgery import remove_channels

    def make():
        torch.manual_seed(0)
        middle = nn.GroupNorm(16, 16) if layer == 'group_norm' else \
            nn.PReLU(16)
        return _net(middle).eval()

    model, x = make(), torch.randn(2, 3, 8, 8)
    nn.init.uniform_(model[3].weight, 0.1, 0.9)  # not the default
    graph = _graph(model)
    group = next(g for g in graph.groups() if g.name == '0')
    mask_channels(group, torch.tensor([1, 5]))
    masked = model(x)
    remove_channels(graph, group, [1, 5])
    assert torch.allclose(model(x), masked, atol=1e-5)
    rebuilt = make()
    restore_architecture(rebuilt, record_architecture(model))
    rebuilt.load_state_dict(model.state_dict())  # strict
    assert torch.equal(rebuilt(x), model(x))
    if layer == 'group_norm':
        assert model[3].num_groups == rebuilt[3].num_groups == 14


def test_a_layer_the_model_cannot_run_at_one_channel_keeps_two(logged):
    """mmpretrain's LeNet5 squeezes its 1x1 features: at one channel the
    classifier would get a 0-d tensor (a 70% Taylor run crashed measuring
    FLOPs). The copy cut to one channel per group finds it; the plan then
    keeps two there and one elsewhere."""
    from models import build_classifier, graph_of
    from prunedet.criteria import L1Norm
    from prunedet.pruning.pruner import ChannelPruner
    from prunedet.pruning.surgery import remove_channels
    from prunedet.pruning.tracing import tensor_forward
    model, x = build_classifier('lenet5')
    graph = graph_of(model, x)
    assert verify_graph(graph, x[:1], tensor_forward) == []
    assert graph.floors == {'backbone.features.6': 2}
    assert 'backbone.features.6 keeps at least 2 channels' in logged()
    pruner = ChannelPruner(graph, L1Norm(), target='channels')
    keep = pruner.plan(0.99, pruner.scores())
    assert keep['backbone.features.6'] == 2
    assert min(keep.values()) == 1
    for group in graph.groups():
        drop = group.num_channels - keep[group.name]
        remove_channels(graph, group, list(range(drop)), [])
    model.eval()
    assert model(x[:2], mode='tensor').shape == (2, 10)
