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
