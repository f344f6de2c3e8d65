"""Criteria scores against hand computations on a two-layer net."""
import pytest
import torch
import torch.nn as nn

from prunedet.criteria import (GradientL1, GradientNorm, L1Norm, L2Norm,
                               Random, TaylorActivation, TaylorWeight, TCP)
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


class ConvNormAct(nn.Module):
    """conv -> BN -> activation twice, then a linear head: where Taylor on
    activations must look past the BN (train mode) to the activation."""

    def __init__(self, act=nn.ReLU):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(6)
        self.act1 = act()
        self.conv2 = nn.Conv2d(6, 5, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(5)
        self.act2 = act()
        self.head = nn.Linear(5, 4)

    def forward(self, x):
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.act2(self.bn2(self.conv2(x)))
        return self.head(x.mean((2, 3)))


def _conv_bn_act(act):
    torch.manual_seed(0)
    model = ConvNormAct(act)
    x = torch.randn(8, 3, 6, 6)
    graph = ChannelGraph(model, x, lambda m, x: m(x))
    groups = {g.name: g for g in graph.groups()}
    assert set(groups) == {'conv1', 'conv2'}
    return model, x, groups


def _hand_taylor(model, x, points):
    """The paper's score at the named modules' outputs, by hand."""
    maps = {}

    def keep(name):

        def hook(module, inputs, output):
            output.retain_grad()
            maps[name] = output

        return hook

    handles = [getattr(model, n).register_forward_hook(keep(n))
               for n in points]
    model.zero_grad()
    model(x).square().mean().backward()
    for h in handles:
        h.remove()
    scores = []
    for name in points:
        z = maps[name]
        s = (z * z.grad).mean((2, 3)).abs().mean(0)
        scores.append((s / s.norm()).detach())
    return scores


@pytest.mark.parametrize('act', [nn.ReLU, nn.Tanh, nn.SiLU])
def test_taylor_activation_scores_the_map_after_norm_and_activation(act):
    model, x, groups = _conv_bn_act(act)
    crit = TaylorActivation()
    crit.attach(groups.values(), model)
    expected = _hand_taylor(model, x, ['act1', 'act2'])
    crit.commit(groups.values())
    torch.testing.assert_close(crit(groups['conv1']), expected[0])
    torch.testing.assert_close(crit(groups['conv2']), expected[1])
    # not the conv output: behind BN in train mode its batch sum is zero
    # (only noise left), and for Tanh/SiLU not even the same terms
    at_conv = _hand_taylor(model, x, ['conv1', 'conv2'])
    assert not torch.allclose(crit(groups['conv1']), at_conv[0], atol=1e-3)
    crit.detach()


def test_taylor_activation_follows_an_inplace_relu():
    model, x, groups = _conv_bn_act(lambda: nn.ReLU(inplace=True))
    crit = TaylorActivation()
    crit.attach(groups.values(), model)
    model.zero_grad()
    model(x).square().mean().backward()
    crit.commit(groups.values())
    crit.detach()
    plain = _conv_bn_act(nn.ReLU)
    expected = _hand_taylor(plain[0], plain[1], ['act1', 'act2'])
    torch.testing.assert_close(crit(groups['conv1']), expected[0])
    torch.testing.assert_close(crit(groups['conv2']), expected[1])


class SmallVGG(nn.Module):
    """Three conv-BN-ReLU stages, pooled, and a linear head."""

    def __init__(self, widths=(8, 12, 16)):
        super().__init__()
        layers, c = [], 3
        for i, w in enumerate(widths):
            layers += [nn.Conv2d(c, w, 3, padding=1), nn.BatchNorm2d(w),
                       nn.ReLU()]
            if i < len(widths) - 1:
                layers.append(nn.MaxPool2d(2))
            c = w
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c, 4)

    def forward(self, x):
        return self.head(self.features(x).mean((2, 3)))


def _spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    ra, rb = (v.argsort().argsort().float() for v in (a, b))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra * rb).sum() / (ra.norm() * rb.norm()))


def _rank_agreement(seed: int):
    """Per layer of a trained BN network: how well the score after the
    activation, and the score at the conv output, rank channels by the
    loss change of removing them (their map set to zero)."""
    F = nn.functional
    torch.manual_seed(seed)
    templates = torch.randn(4, 3, 16, 16)

    def batch(n):
        y = torch.randint(0, 4, (n, ))
        return templates[y] + 0.8 * torch.randn(n, 3, 16, 16), y

    model = SmallVGG()
    optim = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for _ in range(150):
        x, y = batch(32)
        optim.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optim.step()
    groups = ChannelGraph(model, torch.zeros(2, 3, 16, 16),
                          lambda m, x: m(x)).groups()
    after_act, at_conv = TaylorActivation(), TaylorActivation()
    after_act.attach(groups, model)
    at_conv.attach(groups)  # no model: the layer outputs (the old place)
    layers = list(model.features)
    acts = {g.name: layers[layers.index(g.root) + 2] for g in groups}
    truth = {g.name: torch.zeros(g.num_channels) for g in groups}
    for _ in range(4):
        x, y = batch(64)
        model.zero_grad()
        F.cross_entropy(model(x), y).backward()
        after_act.commit(groups)
        at_conv.commit(groups)
        with torch.no_grad():
            base = F.cross_entropy(model(x), y)
            for g in groups:
                for c in range(g.num_channels):
                    handle = acts[g.name].register_forward_hook(
                        lambda m, i, out, c=c: out.index_fill(
                            1, torch.tensor([c]), 0.))
                    truth[g.name][c] += (F.cross_entropy(model(x), y) -
                                         base).abs()
                    handle.remove()
    return [(_spearman(after_act(g), truth[g.name]),
             _spearman(at_conv(g), truth[g.name])) for g in groups]


def test_taylor_after_the_activation_ranks_removals_better_than_at_conv():
    """Molchanov et al.'s point, on a trained BN network (two seeds, three
    layers): the score after the activation orders channels by what
    removing them costs clearly better than the conv-output form."""
    pairs = [p for seed in (0, 1) for p in _rank_agreement(seed)]
    after_act = sum(a for a, _ in pairs) / len(pairs)
    at_conv = sum(b for _, b in pairs) / len(pairs)
    assert after_act > 0.6, pairs
    assert after_act > at_conv + 0.1, pairs


@pytest.mark.parametrize('criterion', [TaylorActivation, TCP])
def test_activation_criteria_keep_no_map_past_its_backward_pass(criterion):
    """A tracked map dies with its training step: the backward hook must not
    hold the map it is registered on (a cycle through autograd's C++ graph
    that gc cannot free), or every step's activations stay alive (2 GB per
    hundred steps of the digits VGG)."""
    import gc
    import weakref
    model, x, groups = _conv_bn_act(nn.ReLU)
    crit = criterion()
    crit.attach(groups.values(), model)
    maps = []
    seen = set()

    def spy(module, inputs, output):
        maps.append(weakref.ref(output))

    handles = [m.register_forward_hook(spy) for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.BatchNorm2d, nn.ReLU))]
    for _ in range(3):
        model.zero_grad()
        model(x).square().mean().backward()
        crit.commit(groups.values())
        seen.update(crit._maps.keys())
    for h in handles:
        h.remove()
    gc.collect()
    assert len(maps) == 18 and seen == set()
    assert [m for m in maps if m() is not None] == []
    assert crit.num_updates == 3
    crit.detach()


def test_activation_maps_are_released_once_scored(monkeypatch):
    """A graph kept after backward (mmengine keeps the step's outputs until
    after_train_iter) must not keep the activations the criterion read."""
    from prunedet.criteria import activation
    made = []

    class Recorded(activation._Map):

        def __init__(self, *args):
            super().__init__(*args)
            made.append(self)

    monkeypatch.setattr(activation, '_Map', Recorded)
    model, x, groups = _conv_bn_act(nn.ReLU)
    crit = TaylorActivation()
    crit.attach(groups.values(), model)
    loss = model(x).square().mean()
    loss.backward()  # ``loss`` and its graph stay alive
    assert len(made) == 6  # conv, bn, relu for each of the two groups
    assert all(m.act is None for m in made)
    crit.commit(groups.values())
    assert crit.num_updates == 1 and crit(groups['conv1']).norm() > 0
    crit.detach()
