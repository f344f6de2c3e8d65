"""Hard pruning keeps the function of soft-pruned networks and the
optimizer state of every kept channel."""
import pytest
import torch

from models import build_classifier, graph_of, randomize_bn
from prunedet.pruning.soft import mask_channels
from prunedet.pruning.architecture import (record_architecture,
                                           restore_architecture)
from prunedet.pruning.surgery import remove_channels


def pick(n, frac=0.3):
    k = max(1, int(n * frac))
    return torch.randperm(n)[:k].sort().values


def prune_every_group(graph, fn):
    """Call ``fn(group, channels)`` on each group, re-reading the groups
    after every change."""
    for name in [g.name for g in graph.groups()]:
        group = next(g for g in graph.groups() if g.name == name)
        fn(group, pick(group.num_channels))


@pytest.mark.parametrize('arch', ['vgg19', 'resnet20', 'lenet5'])
def test_hard_prune_of_soft_zeroed_channels_keeps_outputs(arch):
    model, x = build_classifier(arch)
    randomize_bn(model)
    graph = graph_of(model, x)
    chosen = {}
    sizes = {g.name: g.num_channels for g in graph.groups()}
    for group in graph.groups():
        chosen[group.name] = pick(group.num_channels)
        mask_channels(group, chosen[group.name])
    model.eval()
    with torch.no_grad():
        soft = model(x, mode='tensor')
    params_before = sum(p.numel() for p in model.parameters())
    for name, channels in chosen.items():
        group = next(g for g in graph.groups() if g.name == name)
        remove_channels(graph, group, channels.tolist())
    with torch.no_grad():
        hard = model(x, mode='tensor')
    assert sum(p.numel() for p in model.parameters()) < params_before
    torch.testing.assert_close(hard, soft, atol=1e-5, rtol=1e-4)
    assert {g.name: g.num_channels for g in graph.groups()} == {
        name: sizes[name] - len(c) for name, c in chosen.items()}


@pytest.mark.parametrize('optim', ['sgd', 'adam'])
@pytest.mark.parametrize('arch', ['vgg19', 'resnet20'])
def test_kept_channels_keep_their_optimizer_state_exactly(arch, optim):
    """Every state tensor is cut with its parameter's indices: the state is
    made a known function of the (unique, random) weights before the cut,
    and must still be that function of the cut weights after it."""
    model, x = build_classifier(arch)
    model.train()
    graph = graph_of(model, x)
    if optim == 'sgd':
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    opt.zero_grad()
    model(x, mode='tensor').square().mean().backward()
    opt.step()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p))
            for i, (k, v) in enumerate(opt.state[p].items()):
                if torch.is_tensor(v) and v.shape == p.shape:
                    v.copy_(p * (i + 2) + 1)
    shapes = {n: p.shape for n, p in model.named_parameters()}
    prune_every_group(
        graph, lambda g, c: remove_channels(graph, g, c.tolist(), [opt]))
    params = dict(model.named_parameters())
    assert {id(p) for g in opt.param_groups for p in g['params']} == \
        {id(p) for p in params.values()}
    changed = 0
    for name, p in params.items():
        changed += p.shape != shapes[name]
        for i, (k, v) in enumerate(opt.state[p].items()):
            if torch.is_tensor(v) and v.dim():
                assert torch.equal(v, p.detach() * (i + 2) + 1), (name, k)
    assert changed > 10
    # and training goes on with the same optimizer
    opt.zero_grad()
    model(x, mode='tensor').square().mean().backward()
    opt.step()


def test_restore_architecture_rebuilds_a_pruned_model():
    model, x = build_classifier('resnet20')
    randomize_bn(model)
    graph = graph_of(model, x)
    prune_every_group(
        graph, lambda g, c: remove_channels(graph, g, c.tolist()))
    arch = record_architecture(model)
    fresh, _ = build_classifier('resnet20')
    changed = restore_architecture(fresh, arch)
    assert len(changed) > 20
    fresh.load_state_dict(model.state_dict())  # strict: every shape fits
    model.eval(), fresh.eval()
    with torch.no_grad():
        torch.testing.assert_close(
            fresh(x, mode='tensor'), model(x, mode='tensor'))
