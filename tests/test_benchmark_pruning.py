"""benchmark_pruning.py's prune events: K progressive events reach the
ratio with the optimizer state following the weights, beside as many
Torch-Pruning steps (what is timed, not how long it takes)."""

import pytest
import torch
from mmengine.registry import DefaultScope

from test_tools_and_readme import load_tool
from prunedet.criteria import GradientNorm
from prunedet.pruning.flops import FlopsEstimate, measure_flops
from prunedet.pruning.groups import ChannelGraph
from prunedet.pruning.phases import PHASES
from prunedet.pruning.pruner import ChannelPruner
from prunedet.pruning.tracing import tensor_forward


def test_progressive_events_reach_the_ratio_beside_torch_pruning():
    tool = load_tool('analysis/benchmark_pruning')
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model, x, y, optimizer = tool.setup('resnet56', 4)
        graph = ChannelGraph(model, x[:2], tensor_forward, ['backbone'])
        total, per_layer = measure_flops(model, x[:1], tensor_forward)
        pruner = ChannelPruner(
            graph, GradientNorm(), target='flops', soft_steps=0,
            flops=FlopsEstimate(total, per_layer, graph.groups()))
        tp_full = sum(p.numel() for p in tool.setup('resnet56', 1)[0]
                      .parameters())
        out = tool.prune_events('resnet56', model, x, y, optimizer, pruner,
                                0.5, events=3)
    assert len(out['ours']) == len(out['tp']) == len(out['phases']) == 3
    for timings in out['phases']:  # every event removed channels
        assert {'graph', 'surgery', 'optimizer'} <= set(timings) <= \
            set(PHASES)
    pruned, _ = measure_flops(model, x[:1], tensor_forward)
    assert pruned / total == pytest.approx(0.5, abs=0.02)
    assert sum(p.numel() for p in out['tp_model'].parameters()) < tp_full
    for p in model.parameters():  # the momentum was cut with the weights
        assert optimizer.state[p]['momentum_buffer'].shape == p.shape
    row = dict(prune_event_ratio=0.04, tp_prune_ratio=0.05)
    assert tool.meets_goal(row)
    assert not tool.meets_goal(dict(row, tp_prune_ratio=0.03))
    assert not tool.meets_goal(dict(row, prune_event_ratio=0.051,
                                    tp_prune_ratio=0.09))


def test_the_onnxruntime_profile_matches_nodes_of_pruned_and_unpruned(
        tmp_path):
    """``--profile``: onnxruntime's own per-node times of the network and
    its pruned copy, joined by node name; node times sum to at most the
    run (what is profiled, not how long it takes)."""
    tool = load_tool('analysis/benchmark_pruning')
    from prunedet.pruning.surgery import remove_channels
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model, x, _, _ = tool.setup('resnet56', 2)
        full = tool.setup('resnet56', 1)[0]
    graph = ChannelGraph(model, x, tensor_forward, ['backbone'])
    group = graph.groups()[-1]
    remove_channels(graph, group, range(group.num_channels // 2))
    nodes, ops = tool.node_profile(model.eval(), full.eval(),
                                   str(tmp_path), runs=5)
    names = [n for n, *_ in nodes]
    assert len(set(names)) == len(names) and '(run)' not in names
    assert sum(op == 'Conv' for _, op, *_ in nodes) == 57  # conv(+ReLU)
    totals = {op: (f, c) for op, f, c in ops}
    assert {'Conv', 'Gemm', '(run)'} <= set(totals)
    assert 'BatchNormalization' not in totals  # folded
    for i in (2, 3):  # every shared node timed; nodes sum to at most a run
        assert all(row[i] > 0 for row in nodes)
        assert sum(row[i] for row in nodes) <= totals['(run)'][i - 2]
        assert totals['Conv'][i - 2] == pytest.approx(
            sum(row[i] for row in nodes if row[1] == 'Conv'))
    lines = tool.format_profile('resnet56', (nodes, ops))
    assert len(lines) == len(nodes) + len(ops)
    assert f'resnet56 | all Conv | Conv | {totals["Conv"][0]:.1f} | ' \
        f'{totals["Conv"][1]:.1f} | ' in '\n'.join(lines)
