"""Soft pruning keeps its promise: a zeroed filter still learns, can leave
the selection and be kept; masked channels stay masked until released."""
import re

import pytest
import torch

from models import build_classifier, graph_of
from mmengine.config import Config

from conftest import config_path
from prunedet.criteria import BaseCriterion
from prunedet.pruning.pruner import ChannelPruner
from prunedet.pruning.soft import can_regrow, mask_channels, zero_filters
from runner_utils import build_runner, small_cfg


def train_steps(model, x, opt, steps=5):
    labels = torch.arange(len(x)) % 10
    for _ in range(steps):
        opt.zero_grad()
        logits = model(x, mode='tensor')
        torch.nn.functional.cross_entropy(logits, labels).backward()
        opt.step()


def first_group(graph):
    return next(g for g in graph.groups() if g.name.endswith('layer1.0.conv1'))


def test_zeroed_filters_regrow_while_norm_layers_are_untouched():
    model, x = build_classifier('resnet20')
    model.train()
    graph = graph_of(model, x)
    group = first_group(graph)
    conv, bn = model.backbone.layer1[0].conv1, model.backbone.layer1[0].bn1
    chosen = torch.tensor([0, 3, 5])
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    train_steps(model, x, opt, 2)  # momentum to reset
    with torch.no_grad():  # channels that are active after BN-ReLU
        bn.bias[chosen] = 0.1
    zero_filters(group, chosen, [opt])
    assert conv.weight[chosen].abs().sum() == 0
    assert opt.state[conv.weight]['momentum_buffer'][chosen].abs().sum() == 0
    # only the filters are zeroed: the channel's BN gamma/beta are not
    trained_gamma = bn.weight.detach().clone()
    assert trained_gamma[chosen].abs().min() > 0
    train_steps(model, x, opt, 3)
    regrown = conv.weight.detach()[chosen].flatten(1).norm(dim=1)
    assert (regrown > 1e-4).all(), regrown
    # the old behaviour (output held at zero) never regrows: what 'mask' is
    model2, _ = build_classifier('resnet20')
    model2.load_state_dict(model.state_dict())
    model2.train()
    g2 = first_group(graph_of(model2, x))
    opt2 = torch.optim.SGD(model2.parameters(), lr=0.1, momentum=0.9)
    mask_channels(g2, chosen, [opt2])
    train_steps(model2, x, opt2, 3)
    conv2 = model2.backbone.layer1[0].conv1
    assert conv2.weight[chosen].abs().sum() == 0


def test_can_regrow_predicts_which_zeroed_filters_regrow():
    """Behind BN + ReLU a zeroed filter regrows only where beta > 0: the
    count the step logs beside the recovered ones is that prediction."""
    model, x = build_classifier('resnet20')
    model.train()
    group = first_group(graph_of(model, x))
    conv, bn = model.backbone.layer1[0].conv1, model.backbone.layer1[0].bn1
    chosen = torch.tensor([0, 2, 3, 5, 7, 9])
    with torch.no_grad():
        bn.bias[chosen] = torch.tensor([0.1, -0.1, 0.2, -0.3, 0.1, -0.2])
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    zero_filters(group, chosen, [opt])
    predicted = can_regrow(group, chosen)
    assert predicted.tolist() == [True, False, True, False, True, False]
    train_steps(model, x, opt, 3)
    regrown = conv.weight.detach()[chosen].flatten(1).norm(dim=1) > 0
    assert regrown.tolist() == predicted.tolist()
    # without norm layers every zeroed filter can regrow
    lenet, y = build_classifier('lenet5')
    plain = graph_of(lenet, y).groups()[0]
    assert can_regrow(plain, torch.tensor([0, 1])).all()


class Fixed(BaseCriterion):
    """Scores set by the test."""

    def __init__(self, scores):
        super().__init__()
        self.values = scores

    def __call__(self, group):
        return self.values[group.name].clone()


def test_a_regrown_channel_leaves_the_selection_and_is_counted():
    model, x = build_classifier('resnet20')
    graph = graph_of(model, x)
    scores = {g.name: torch.arange(g.num_channels, dtype=torch.float)
              for g in graph.groups()}
    pruner = ChannelPruner(graph, Fixed(scores), soft_steps=None)
    name = first_group(graph).name
    result = pruner.step(0.25)  # channels 0..3 of 16 are the weakest
    assert result.soft > 0 and result.recovered == 0
    assert pruner.soft[name].nonzero().flatten().tolist() == [0, 1, 2, 3]
    scores[name][1] = 100.  # channel 1 regrew: no longer among the weakest
    result = pruner.step(0.25)
    assert result.recovered == 1  # channel 1
    assert pruner.soft[name].nonzero().flatten().tolist() == [0, 2, 3, 4]
    last = pruner.step(0.25, last=True)
    assert last.hard > 0 and pruner.kept_after_soft() >= 1
    assert model.backbone.layer1[0].conv1.out_channels == 12


def adam_update_after_soft_prune(reset_second_moments):
    """max |first update| / lr of two zeroed LeNet-5 filters, Adam deep into
    training. (LeNet has no BN: behind a BN the zeroed filter's gradient is
    amplified by gamma / sqrt(eps) and any Adam step is at its bound.)"""
    torch.manual_seed(1)
    model, x = build_classifier('lenet5')
    model.train()
    graph = graph_of(model, x)
    group = next(g for g in graph.groups() if g.name == 'backbone.features.0')
    conv = model.backbone.features[0]
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    train_steps(model, x, opt, 3)
    for state in opt.state.values():  # as after 10k iterations: converged
        state['exp_avg'].div_(1 - 0.9**3)  # moments, no bias correction
        state['exp_avg_sq'].div_(1 - 0.999**3)
        state['step'].fill_(10000)
    chosen = torch.tensor([2, 4])
    second = opt.state[conv.weight]['exp_avg_sq'].clone()
    zero_filters(group, chosen, [opt])
    state = opt.state[conv.weight]
    assert state['exp_avg'][chosen].abs().sum() == 0  # direction reset
    assert torch.equal(state['exp_avg_sq'], second)  # scale kept
    if reset_second_moments:
        state['exp_avg_sq'][chosen] = 0
    train_steps(model, x, opt, 1)
    return float(conv.weight.detach()[chosen].abs().max() / 1e-3)


def test_adam_first_update_after_a_soft_prune_is_not_a_full_jump():
    # kept second moments: about (1 - beta1) * lr * |g| / rms(g) per
    # element, below a full lr * sign(g) step
    assert adam_update_after_soft_prune(False) < 1.
    # both moments reset: (1 - beta1) / sqrt(1 - beta2) * lr = 3.2 lr
    assert adam_update_after_soft_prune(True) > 2.


def test_mask_mode_holds_zero_across_steps_and_resume_then_releases():
    model, x = build_classifier('resnet20')
    model.train()
    graph = graph_of(model, x)
    name = first_group(graph).name
    scores = {g.name: torch.arange(g.num_channels, dtype=torch.float)
              for g in graph.groups()}
    pruner = ChannelPruner(graph, Fixed(scores), soft_steps=None,
                           soft_mode='mask')
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    pruner.step(0.25, optimizers=[opt])
    conv = model.backbone.layer1[0].conv1
    bn = model.backbone.layer1[0].bn1
    for _ in range(3):
        train_steps(model, x, opt, 1)
        pruner.hold([opt])
        assert conv.weight[:4].abs().sum() == 0
        assert bn.weight[:4].abs().sum() == bn.bias[:4].abs().sum() == 0
    # the masks are state: a resumed pruner holds the same channels
    state = pruner.state_dict()
    fresh = ChannelPruner(graph, Fixed(scores), soft_steps=None,
                          soft_mode='mask')
    fresh.load_state_dict(state)
    assert torch.equal(fresh.soft[name], pruner.soft[name])
    # released when no longer selected: trainable again
    scores[name][0] = 100.
    result = fresh.step(0.25, optimizers=[opt])
    assert result.recovered == 1
    assert conv.weight[0].abs().sum() > 0 and bn.weight[0] == 1.
    train_steps(model, x, opt, 1)
    fresh.hold([opt])
    assert conv.weight[0].abs().sum() > 0


def test_psfp_run_keeps_channels_that_were_soft_pruned(tmp_path, mnist_root):
    """SFP's promise in a real run: zeroed filters keep training, some
    regrow above others and are kept when the selection is removed."""
    cfg = small_cfg('classification/resnet20_mnist.py', tmp_path,
                    mnist_root, **{
                        'train_cfg.max_epochs': 4,
                        'train_dataloader.batch_size': 8,
                    })
    psfp = Config.fromfile(config_path('_base_', 'pruning', 'psfp.py'))
    cfg.custom_hooks = psfp.custom_hooks  # L2 norm, zeroed, exponential
    runner = build_runner(cfg)
    runner.train()
    hook = next(h for h in runner.hooks
                if type(h).__name__ == 'ProgressivePruningHook')
    assert hook.finished and hook.pruner.soft_mode == 'zero'
    # soft pruning after every epoch until training ends (not cut earlier)
    assert hook.steps_done == 4
    kept = hook.pruner.kept_after_soft()
    assert kept > 0
    log = open(next(tmp_path.glob('*/*.log'))).read()
    recovered = [int(line.split(' soft-pruned recovered')[0].split()[-1])
                 for line in log.splitlines() if 'soft-pruned recovered' in line]
    assert sum(recovered) > 0
    regrowable = [int(n) for n in re.findall(
        r'(\d+) of the \d+ zeroed can regrow', log)]
    assert regrowable and sum(regrowable) > 0
    # and those channels carry real weights: in a residual group a channel
    # is kept when the group's filters of it regrew, though a producer
    # behind a BN whose beta is negative gets no gradient to regrow by
    for g in hook.pruner.groups:
        was = hook.pruner.ever_soft[g.name]
        if was.any():
            norm = sum(s.per_channel(s.param.detach().square(),
                                     g.num_channels)
                       for s in g.producers
                       if s.name == 'weight' and s.param.dim() > 1)  # filters
            assert (norm[was] > 0).all(), g.name


@pytest.mark.parametrize('mode', ['zero', 'reinit', 'mask'])
def test_soft_modes_leave_other_channels_alone(mode):
    model, x = build_classifier('resnet20')
    graph = graph_of(model, x)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    scores = {g.name: torch.arange(g.num_channels, dtype=torch.float)
              for g in graph.groups()}
    pruner = ChannelPruner(graph, Fixed(scores), soft_steps=None,
                           soft_mode=mode)
    pruner.step(0.25)
    after = model.state_dict()
    w = 'backbone.layer1.0.conv1.weight'
    assert torch.equal(after[w][4:], before[w][4:])  # unselected: as before
    assert not torch.equal(after[w][:4], before[w][:4])
    bn = 'backbone.layer1.0.bn1.weight'
    assert torch.equal(after[bn], before[bn]) == (mode != 'mask')


@pytest.mark.parametrize('method', ['pgp_code', 'rpgp_code'])
def test_the_public_codes_form_reinitialises_then_removes(
        method, tmp_path, mnist_root):
    """The configs of PGP's public code: its criterion, selected filters
    split into removed and re-initialised ones at every step, all selected
    ones removed at the last, to the FLOPs target."""
    cfg = small_cfg(f'classification/lenet5_mnist_{method}.py', tmp_path,
                    mnist_root, **{'train_cfg.max_epochs': 4,
                                   'train_dataloader.batch_size': 16})
    if method == 'rpgp_code':
        cfg.custom_hooks[0].interval = 8
    runner = build_runner(cfg)
    runner.train()
    hook = next(h for h in runner.hooks
                if type(h).__name__ == 'ProgressivePruningHook')
    assert type(hook.criterion).__name__ == dict(
        pgp_code='TaylorWeight', rpgp_code='GradientL1')[method]
    assert hook.finished and hook.pruner.soft_mode == 'reinit'
    assert hook.steps_done >= 3
    log = open(next(tmp_path.glob('*/*.log'))).read()
    steps = [line for line in log.splitlines() if 'soft + ' in line]
    soft = [int(line.split(' soft + ')[0].split()[-1]) for line in steps]
    hard = [int(line.split(' soft + ')[1].split()[0]) for line in steps]
    assert sum(soft) > 0 and sum(hard) > 0, steps
    assert soft[-1] == 0  # the last step removes all it selects
    assert not hook.pruner.soft[hook.pruner.groups[0].name].any()
    assert hook.flops_ratio == pytest.approx(0.5, abs=0.05)
