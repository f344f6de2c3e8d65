"""Latency target: the planner on made-up latency tables, the table's
interpolation and cache, and clear errors for bad names. Nothing is timed
against a threshold here (the benchmarks carry the numbers)."""
import pytest
import torch

from mmdet.registry import MODELS as DET_MODELS
from mmengine.registry import DefaultScope

from conftest import config_path
from models import build_classifier, graph_of
from prunedet.criteria import BaseCriterion, L1Norm
from prunedet.engine import ProgressivePruningHook
from prunedet.models.detectors import two_stage_forward
from prunedet.pruning import latency_table
from prunedet.pruning.flops import layer_sides
from prunedet.pruning.groups import ChannelGraph
from prunedet.pruning.layers import layer_pruner
from prunedet.pruning.latency_table import (LatencyEstimate, LayerLatency,
                                            check_runtime, measure_latency)
from prunedet.pruning.pruner import ChannelPruner
from prunedet.utils.config import load_config


class Fixed(BaseCriterion):
    """Scores given by the test."""

    def __init__(self, scores):
        super().__init__()
        self.scores = scores

    def __call__(self, group):
        return self.scores[group.name].clone()


def widths(model, names):
    modules = dict(model.named_modules())
    return {
        n: (layer_pruner(modules[n]).get_in_channels(modules[n]),
            layer_pruner(modules[n]).get_out_channels(modules[n]))
        for n in names
    }


def fake_estimate(model, graph, cost, fixed=0.1):
    """A latency table where layer ``n`` costs ``cost(n, in, out)``, and
    the rest of the network ``fixed`` of the layers' sum."""
    names = {n for g in graph.groups() for n in g.members}
    layers = {n: (lambda i, o, n=n: cost(n, i, o)) for n in names}
    full = widths(model, names)
    total = (1 + fixed) * sum(layers[n](*full[n]) for n in names)
    return LatencyEstimate(total, layers, full, graph.groups())


@pytest.fixture(scope='module')
def resnet20():
    model, x = build_classifier('resnet20')
    return model, graph_of(model, x[:2])


@pytest.mark.parametrize('round_to', [1, 4])
def test_knapsack_meets_the_estimated_target_within_one_step(
        resnet20, round_to):
    model, graph = resnet20
    torch.manual_seed(0)
    weight = {n: float(torch.rand(1)) + .1
              for g in graph.groups() for n in g.members}
    estimate = fake_estimate(
        model, graph, lambda n, i, o: 1e-7 * weight[n] * i * o + 1e-5)
    pruner = ChannelPruner(graph, L1Norm(), target='latency',
                           global_ranking=True, round_to=round_to,
                           latency=estimate)
    pruner.check(0.4)
    keep = pruner.plan(0.4, pruner.scores())
    goal = 0.6 * estimate.original
    step = max(
        estimate.saving_per_channel(keep, g.name) for g in graph.groups())
    assert goal - step * round_to <= estimate(keep) <= goal + 1e-12
    assert all(k % round_to == 0 for k in keep.values())


def test_uniform_plan_meets_the_estimated_target(resnet20):
    model, graph = resnet20
    estimate = fake_estimate(model, graph, lambda n, i, o: 1e-6 * i * o)
    pruner = ChannelPruner(graph, L1Norm(), target='latency',
                           latency=estimate)
    keep = pruner.plan(0.3, pruner.scores())
    assert estimate(keep) <= 0.7 * estimate.original
    fractions = {k / pruner.original[n] for n, k in keep.items()}
    assert max(fractions) - min(fractions) < 0.1  # the same ratio


A, B = 'backbone.layer1.0.conv1', 'backbone.layer1.1.conv1'


@pytest.mark.parametrize('a_per_channel, cut', [(1e-3, B), (4e-3, A)])
def test_the_cut_goes_where_it_saves_most_time_per_importance(
        resnet20, a_per_channel, cut):
    """A's channels score 0.25 each (normalised), B's weaker half 0.16:
    at equal savings B's go first, but when A's save four times more
    time, A's cost less importance per second and go first."""
    model, graph = resnet20
    per_channel = {A: a_per_channel, B: 1e-3}
    estimate = fake_estimate(
        model, graph, lambda n, i, o: per_channel.get(n, 0.) * o)
    scores = {g.name: torch.ones(g.num_channels) for g in graph.groups()}
    scores[B][:8] = 0.5
    pruner = ChannelPruner(graph, Fixed(scores), target='latency',
                           global_ranking=True, latency=estimate)
    saved = 4 * per_channel[cut]
    keep = pruner.plan(saved / estimate.original, scores)
    lost = {n: pruner.original[n] - k for n, k in keep.items()
            if k != pruner.original[n]}
    assert lost == {cut: 4}


def test_a_step_to_a_latency_target_cuts_the_model(resnet20):
    model, x = build_classifier('resnet20')
    graph = graph_of(model, x[:2])
    estimate = fake_estimate(model, graph, lambda n, i, o: 1e-6 * i * o)
    pruner = ChannelPruner(graph, L1Norm(), target='latency',
                           global_ranking=True, latency=estimate)
    pruner.step(0.3, last=True)
    keep = {n: c[0] for n, c in pruner.channels().items()}
    assert estimate(keep) <= 0.7 * estimate.original
    assert model(x, mode='tensor').shape == (4, 10)


def test_layer_table_is_bilinear_and_never_faster_when_wider():
    table = LayerLatency([8, 16], [4, 8], [[1., 3.], [2., 2.]])
    assert table.seconds == [[1., 2.], [2., 2.]]  # a slow point: load
    assert table(12, 6) == pytest.approx((1 + 2 + 2 + 2) / 4)
    assert table(2, 2) == 1. and table(32, 32) == 2.  # flat outside
    single = LayerLatency([16], [4, 8], [[1., 2.]])  # in side not cut
    assert single(3, 6) == pytest.approx(1.5)


def test_table_is_measured_once_and_read_from_the_cache(tmp_path,
                                                        monkeypatch):
    model, x = build_classifier('lenet5')
    graph = graph_of(model, x[:2])
    threads = torch.get_num_threads()
    measured = measure_latency(model, x, graph.groups(), 'eager',
                               str(tmp_path), repeats=1, threads=1)
    assert torch.get_num_threads() == threads  # put back
    assert len(list(tmp_path.iterdir())) == 1
    assert set(measured['layers']) == set(measured['widths'])
    assert model.training  # left as it was

    def fail(*args):
        raise AssertionError('measured again')

    monkeypatch.setattr(latency_table, '_measure', fail)
    again = measure_latency(model, x, graph.groups(), 'eager',
                            str(tmp_path), repeats=1, threads=1)
    assert again['layers'] == measured['layers']
    estimate = LatencyEstimate.from_measured(again, graph.groups())
    keep = {g.name: g.num_channels for g in graph.groups()}
    assert estimate(keep) == pytest.approx(measured['total'])
    # a table timed with fewer repeats (a quick, noisy one) is another table
    with pytest.raises(AssertionError, match='measured again'):
        measure_latency(model, x, graph.groups(), 'eager', str(tmp_path),
                        repeats=2, threads=1)


def test_bad_runtime_and_target_names_fail_clearly(resnet20):
    model, graph = resnet20
    with pytest.raises(ValueError, match=r"runtime must be one of \('eager', "
                       r"'channels_last', 'onnxruntime'\).*'tensorrt'"):
        check_runtime('tensorrt')
    with pytest.raises(ValueError, match="runtime must be one of"):
        ProgressivePruningHook(target='latency', runtime='tensorrt')
    with pytest.raises(ValueError, match="target must be one of"):
        ProgressivePruningHook(target='latncy')
    with pytest.raises(ValueError, match="target must be one of"):
        ChannelPruner(graph, L1Norm(), target='time')
    with pytest.raises(ValueError, match=r"target='latency' needs an "
                       r"estimate of the latency"):
        ChannelPruner(graph, L1Norm(), target='latency')


@pytest.fixture(scope='module')
def detector():
    """The demo detector at 128x128 (its layers, a smaller input)."""
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = DET_MODELS.build(load_config(
            config_path('demo', 'faster_rcnn_vgg16_shapes.py')).model)
    x = torch.randn(1, 3, 128, 128)
    graph = ChannelGraph(model.eval(), x.repeat(2, 1, 1, 1),
                         two_stage_forward, ['backbone'])
    return model, x, graph


def test_layers_without_weights_follow_the_layer_that_reads_them(
        detector, tmp_path):
    """RoIAlign's time goes with fc6's input (conv5_3's channels, read
    through a flatten), a pool's and a ReLU's with the next conv's input;
    the RPN's ReLU feeds only layers no group cuts: it stays fixed."""
    model, x, graph = detector
    sides = layer_sides(graph.groups())
    names = [n for n in sides if isinstance(
        dict(model.named_modules())[n], latency_table._TIMED)]
    shapes, follows = latency_table._trace_calls(model, x, names, sides,
                                                 str(tmp_path))
    assert set(shapes) == set(names)
    layer, side, args = follows['roi_head.bbox_roi_extractor.roi_layers.0']
    assert (layer, side) == ('roi_head.bbox_head.shared_fcs.0', 'in')
    assert args[1].shape == (100, 5)  # the RoIs it was called with
    assert follows['backbone.features.6'][:2] == (  # conv1_2's pool
        'backbone.features.7', 'in')
    assert follows['backbone.features.5'][:2] == ('backbone.features.7',
                                                  'in')
    assert not any(n.startswith('rpn_head') for n in follows)


def fake_times(fns, repeats, warmup=2, before=None):
    """The n-th point of a grid (narrowest first) takes n ms, the whole
    network (the last call) 100 ms."""
    return [1e-3 * (i + 1) for i in range(len(fns) - 1)] + [0.1]


class InvertedResidual(torch.nn.Module):
    """MobileNetV2's block: expand, depthwise, project."""

    def __init__(self):
        super().__init__()
        nn = torch.nn
        self.pw = nn.Conv2d(3, 16, 1)
        self.bn1, self.act1 = nn.BatchNorm2d(16), nn.ReLU6()
        self.dw = nn.Conv2d(16, 16, 3, padding=1, groups=16)
        self.bn2, self.act2 = nn.BatchNorm2d(16), nn.ReLU6()
        self.proj = nn.Conv2d(16, 8, 1)

    def forward(self, x, mode='tensor'):  # as network_fn calls a model
        x = self.act1(self.bn1(self.pw(x)))
        return self.proj(self.act2(self.bn2(self.dw(x)))).mean((2, 3))


def test_a_follower_read_by_a_depthwise_conv_follows_its_channels(
        tmp_path):
    """The expand conv's activation, the largest map of the block, is read
    by the depthwise conv, whose input is its output: it is cut with them,
    not left in the fixed time."""
    model = InvertedResidual().eval()
    x = torch.randn(2, 3, 16, 16)
    graph = ChannelGraph(model, x, lambda m, x: m(x))
    sides = layer_sides(graph.groups())
    _, follows = latency_table._trace_calls(model, x, list(sides), sides,
                                            str(tmp_path))
    assert follows['act1'][:2] == ('dw', 'out')
    assert follows['act2'][:2] == ('proj', 'in')


def test_followers_are_in_the_table_and_cut_with_their_group(
        detector, tmp_path, monkeypatch):
    model, x, graph = detector
    monkeypatch.setattr(latency_table, 'median_times', fake_times)
    measured = measure_latency(model, x, graph.groups(), 'eager', None)
    roi = 'roi_head.bbox_roi_extractor.roi_layers.0'
    assert measured['follows'][roi] == ['roi_head.bbox_head.shared_fcs.0',
                                        'in']
    assert measured['widths'][roi] == [128, 128]
    assert measured['layers'][roi]['ins'] == [16, 32, 64, 96, 128]
    estimate = LatencyEstimate.from_measured(measured, graph.groups())
    keep = {g.name: g.num_channels for g in graph.groups()}
    assert estimate(keep) == pytest.approx(measured['total'])
    # without its followers, conv5_3 saves only its own and its readers'
    unfollowed = LatencyEstimate.from_measured(
        dict(measured, follows={}), graph.groups())
    assert len(unfollowed.terms) == len(estimate.terms) - len(
        measured['follows'])
    conv5_3 = 'backbone.features.40'
    assert estimate.saving_per_channel(keep, conv5_3) > \
        unfollowed.saving_per_channel(keep, conv5_3) > 0


def test_a_follower_that_costs_the_same_at_every_width_stays_fixed(
        detector, monkeypatch):
    model, x, graph = detector
    monkeypatch.setattr(latency_table, 'median_times',
                        lambda fns, *args, **kwargs: [1e-3] * len(fns))
    measured = measure_latency(model, x, graph.groups(), 'eager', None)
    assert measured['follows'] == {}
    assert 'backbone.features.40' in measured['layers']


def test_a_follower_counts_as_its_layers_input_side(resnet20):
    """A made-up follower of a conv's input costs 1 s per channel: cutting
    the group of that input by 4 saves 4 s more than without it; one
    following a layer no group holds stays in the fixed time."""
    model, graph = resnet20
    names = {n for g in graph.groups() for n in g.members}
    full = widths(model, names)
    layers = {n: (lambda i, o: 0.) for n in names}
    group = layer_sides(graph.groups())[A]['in'][0][0]
    width = {g.name: g for g in graph.groups()}[group].num_channels
    estimate = LatencyEstimate(
        100., dict(layers, relu=lambda i, o: float(i), other=lambda i, o: 7.),
        dict(full, relu=[width, width], other=[1, 1]), graph.groups(),
        follows={'relu': (A, 'in'), 'other': ('not.a.layer', 'in')})
    keep = {g.name: g.num_channels for g in graph.groups()}
    assert estimate.fixed == pytest.approx(100. - width)
    keep[group] -= 4
    assert estimate(keep) == pytest.approx(100. - 4)


def test_a_call_with_a_large_output_is_timed_after_an_untimed_one():
    calls, big = [], torch.zeros(1 << 18)  # 1 MB

    def call(name, output):
        return lambda: calls.append(name) or output

    latency_table._median_times([call('small', big[:-1]), call('big', big)],
                                repeats=1)
    assert calls == ['small', 'big'] + ['small', 'big', 'big'] * 3
