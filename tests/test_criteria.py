"""Criteria scores against hand computations on a two-layer net."""
import pytest
import torch
import torch.nn as nn

from prunedet.criteria import (GradientL1, GradientNorm, L1Norm, L2Norm,
                               Random, TaylorActivation, TaylorWeight)
from prunedet.engine.hooks.progressive_pruning_hook import build_criterion
from prunedet.pruning.groups import ChannelGraph


class TwoLayer(nn.Module):

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 3, 3, padding=1)
        self.conv2 = nn.Conv2d(3, 2, 1)

    def forward(self, x):
        return self.conv2(torch.relu(self.conv1(x)))


@pytest.fixture
def net():
    model = TwoLayer()
    x = torch.randn(4, 2, 5, 5)
    graph = ChannelGraph(model, x, lambda m, x: m(x))
    (group, ) = graph.groups()  # conv2 produces the output: not prunable
    assert group.name == 'conv1' and group.num_channels == 3
    return model, x, group


def backward(model, x):
    model.zero_grad()
    model(x).square().mean().backward()


def test_gradient_criteria_match_hand_computation_over_two_steps(net):
    model, x, group = net
    w, b, w2 = model.conv1.weight, model.conv1.bias, model.conv2.weight
    crits = dict(
        tw=GradientNorm(),
        tw_all=GradientNorm(include_consumers=True),
        taylor=TaylorWeight(),
        gl1=GradientL1())
    expected = {k: torch.zeros(3) for k in crits}
    signed = torch.zeros(3)
    for step in range(2):
        xs = x + step
        backward(model, xs)
        for c in crits.values():
            c.commit([group])
        tw = (w * w.grad).abs().sum((1, 2, 3)) + (b * b.grad).abs()
        expected['tw'] += tw
        expected['tw_all'] += tw + (w2 * w2.grad).abs().sum((0, 2, 3))
        signed += (w * w.grad).sum((1, 2, 3)) + b * b.grad
        expected['gl1'] += w.grad.abs().sum((1, 2, 3)) + b.grad.abs()
        with torch.no_grad():  # change the weights between the two steps
            w.mul_(0.5)
    expected['taylor'] = signed.abs()
    for key, crit in crits.items():
        torch.testing.assert_close(crit(group), expected[key].detach())
    crits['tw'].reset()
    assert torch.equal(crits['tw'](group), torch.zeros(3))


def test_norm_criteria_match_hand_computation(net):
    model, _, group = net
    w = model.conv1.weight.detach()
    torch.testing.assert_close(L1Norm()(group), w.abs().sum((1, 2, 3)))
    torch.testing.assert_close(L2Norm()(group), w.square().sum((1, 2, 3)).sqrt())


def test_taylor_activation_matches_hand_computation(net):
    model, x, group = net
    crit = TaylorActivation()
    crit.attach([group])
    acts = []

    def keep_output(module, inputs, output):
        output.retain_grad()
        acts.append(output)

    handle = model.conv1.register_forward_hook(keep_output)
    backward(model, x)
    crit.commit([group])
    handle.remove()
    h = acts[0]
    # the paper's form: |mean over H, W of z * dL/dz| per example, averaged
    # over the batch, L2-normalised within the layer
    expected = (h * h.grad).mean((2, 3)).abs().mean(0)
    expected = expected / expected.norm()
    torch.testing.assert_close(crit(group), expected.detach())
    crit.detach()
    backward(model, x)  # detached: nothing more is accumulated
    crit.commit([group])
    torch.testing.assert_close(crit(group), expected.detach())


def test_random_is_reproducible_and_state_restores(net):
    _, _, group = net
    a, b = Random(seed=3), Random(seed=3)
    assert torch.equal(a(group), b(group))
    state = a.state_dict()
    first = a(group)
    a.load_state_dict(state)
    assert torch.equal(a(group), first)


def test_unknown_criterion_names_the_problem():
    with pytest.raises(KeyError, match="unknown pruning criterion 'Gradnorm'"):
        build_criterion(dict(type='Gradnorm'))
