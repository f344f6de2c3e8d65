"""Latency target: the planner on made-up latency tables, the table's
interpolation and cache, and clear errors for bad names. Nothing is timed
against a threshold here (the benchmarks carry the numbers)."""
import pytest
import torch

from models import build_classifier, graph_of
from prunedet.criteria import BaseCriterion, L1Norm
from prunedet.engine import ProgressivePruningHook
from prunedet.pruning import latency_table
from prunedet.pruning.layers import layer_pruner
from prunedet.pruning.latency_table import (LatencyEstimate, LayerLatency,
                                            check_runtime, measure_latency)
from prunedet.pruning.pruner import ChannelPruner


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
