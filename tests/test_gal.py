"""GAL: FISTA, the masks and their train step, the frozen teacher, and the
exact removal of filters, blocks and branches."""
import copy
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.registry import DefaultScope
from mmengine.runner.checkpoint import _load_checkpoint_to_model
from mmpretrain.registry import MODELS

from models import CLASSIFIERS, randomize_bn
from prunedet.gal import (FISTA, GALOptimWrapperConstructor,
                          check_removal, remove_masked_structures)
from prunedet.pruning.architecture import (record_architecture,
                                           restore_architecture)
from prunedet.pruning.structures import ResidualShortcut

LENET_FILTERS = [
    dict(kind='filter', names=[
        'backbone.features.1', 'backbone.features.4', 'backbone.features.7',
        'backbone.classifier.1'
    ])
]
BLOCKS = [dict(kind='block', types=['BasicBlock'])]


@pytest.fixture(autouse=True, scope='module')
def one_thread_in_mmpretrain():
    """One thread, and mmpretrain's registries whatever an earlier test left
    as the default scope (GAL and its backbones are mmpretrain models)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        yield
    torch.set_num_threads(threads)


def gal(arch='lenet5', structures=LENET_FILTERS, **options):
    return MODELS.build(
        dict(type='GAL', **CLASSIFIERS[arch], structures=structures,
             **options))


def googlenet_gal(**options):
    return MODELS.build(
        dict(type='GAL',
             backbone=dict(type='CIFARGoogLeNet', widen_factor=1 / 16),
             neck=dict(type='GlobalAveragePooling'),
             head=dict(type='LinearClsHead', num_classes=10, in_channels=64),
             **options))


def wrappers(model, sparsity=0.01, d_lr=0.01, mask_lr=0.01):
    sgd = dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=2e-4)
    return GALOptimWrapperConstructor(
        dict(student=dict(optimizer=sgd),
             discriminator=dict(optimizer=dict(sgd, lr=d_lr)),
             masks=dict(optimizer=dict(type='FISTA', lr=mask_lr,
                                       sparsity=sparsity))))(model)


def batch(n=8, channels=1):
    return dict(inputs=torch.randn(n, channels, 32, 32) * 50 + 100)


def mask_values(model):
    return torch.cat([m.weight.detach().flatten()
                      for m in model.masks.values()])


# --- FISTA ------------------------------------------------------------------


def fista_by_hand(x0, target, lr, lam, steps, restart, grad_at_x=False):
    """Beck & Teboulle on f(x) = sum (x - target)^2 / 2 with x >= 0, one
    coordinate at a time in plain floats, with the adaptive restart
    (``grad_at_x``: the public code's gradient at x_k, applied at y_k)."""
    x_prev, x, t = list(x0), list(x0), 1.
    restarts = 0
    for k in range(steps):
        if k == 0:
            y = list(x)
        else:
            t_next = (1 + math.sqrt(1 + 4 * t * t)) / 2
            y = [a + (t - 1) / t_next * (a - b) for a, b in zip(x, x_prev)]
            t = t_next
        point = x if grad_at_x else y
        grad = [a - c for a, c in zip(point, target)]
        new = []
        for yi, gi in zip(y, grad):
            v = yi - lr * gi
            v = math.copysign(max(abs(v) - lr * lam, 0.), v)  # soft-threshold
            new.append(max(v, 0.))  # and non-negative
        along = sum((a - b) * (b - c) for a, b, c in zip(y, new, x))
        x_prev, x = x, new
        if restart and along > 0:
            t, restarts = 1., restarts + 1
    return x, restarts


def run_fista(x0, target, lr, lam, steps, restart):
    p = nn.Parameter(torch.tensor(x0, dtype=torch.float64))
    opt = FISTA([p], lr=lr, sparsity=lam, restart=restart)
    for _ in range(steps):
        opt.extrapolate()
        loss = 0.5 * ((p - torch.tensor(target, dtype=torch.float64))**2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return p.detach().tolist()


@pytest.mark.parametrize('restart', [False, True])
def test_fista_equals_a_hand_computation(restart):
    # momentum carries the iterate past the minimum, so the restart fires;
    # the third coordinate is pulled below zero (clamped at 0), the fourth
    # sits at its minimum and is only shrunk by the threshold
    x0, target = [0.2, 3.0, 0.5, 1.0], [2.0, 0.5, -1.0, 1.0]
    expected, restarts = fista_by_hand(x0, target, 0.3, 0.3, 8, restart)
    got = run_fista(x0, target, 0.3, 0.3, 8, restart)
    assert got == pytest.approx(expected, abs=1e-12)
    assert restarts == (1 if restart else 0)
    assert got[2] == 0. and min(got) >= 0
    # with the other restart setting, or the gradient at x_k (the public
    # code), the sequence differs: the test sees either mistake
    for other in (fista_by_hand(x0, target, 0.3, 0.3, 8, not restart),
                  fista_by_hand(x0, target, 0.3, 0.3, 8, restart, True)):
        assert max(abs(a - b) for a, b in zip(other[0], expected)) > 1e-3


def test_fista_gradient_is_taken_at_the_extrapolated_point():
    """At step 3 the momentum is non-zero: y_3 != x_2. The gradient the
    step uses must be the one computed at y_3."""
    p = nn.Parameter(torch.tensor([4.0]))
    opt = FISTA([p], lr=0.5, sparsity=0., restart=False)
    seen = []
    for _ in range(3):
        opt.extrapolate()
        seen.append(float(p.detach()))
        loss = 0.5 * (p**2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    x1, x2 = 2.0, 1.0  # x_k = y_k - 0.5 * y_k
    t2 = (1 + math.sqrt(5)) / 2
    t3 = (1 + math.sqrt(1 + 4 * t2 * t2)) / 2
    y3 = x2 + (t2 - 1) / t3 * (x2 - x1)
    assert seen == pytest.approx([4.0, x1, y3])
    assert float(p.detach()) == pytest.approx(y3 / 2)


def test_fista_restarts_when_the_learning_rate_changes():
    p = nn.Parameter(torch.tensor([4.0]))
    opt = FISTA([p], lr=0.5, sparsity=0., restart=True)

    def step():
        opt.extrapolate()
        y = float(p.detach())
        opt.zero_grad()
        (0.5 * (p**2).sum()).backward()
        opt.step()
        return y

    for _ in range(3):
        step()
    opt.param_groups[0]['lr'] = 0.25
    step()  # with the new lr: the momentum is dropped after it
    x = float(p.detach())
    assert step() == pytest.approx(x)  # y = x: no extrapolation


def test_fista_refuses_a_gradient_not_taken_at_y_and_bad_options():
    p = nn.Parameter(torch.ones(3))
    opt = FISTA([p], lr=0.1, sparsity=0.1)
    p.sum().backward()
    with pytest.raises(RuntimeError, match='extrapolate'):
        opt.step()
    for options, match in ((dict(sparsity=-0.1), 'sparsity must be'),
                           (dict(lr=0.), 'lr must be'),
                           (dict(sparsity=float('nan')), 'sparsity')):
        with pytest.raises(ValueError, match=match):
            FISTA([nn.Parameter(torch.ones(1))], **options)


# --- the model and its train step -----------------------------------------


def mask_step_by_hand(model, data, miu):
    """On a copy of ``model``: the masks, the gradient of
    ``miu * MSE + BCE(D(s), 1)`` with respect to them, the discriminator's
    loss and the teacher's logits, as the first step must see them."""
    model = copy.deepcopy(model)
    x0 = [m.weight.detach().clone() for m in model.masks.values()]
    inputs = model.data_preprocessor(data, True)['inputs']
    teacher = model.teacher(inputs, mode='tensor')
    student = model.student_logits(inputs)
    real, fake = model.discriminator(teacher), model.discriminator(student)
    ones, zeros = torch.ones_like(real), torch.zeros_like(real)
    loss = miu * F.mse_loss(student, teacher) + \
        F.binary_cross_entropy_with_logits(fake, ones)
    grads = torch.autograd.grad(
        loss, [m.weight for m in model.masks.values()])
    loss_d = (F.binary_cross_entropy_with_logits(real, ones) +
              F.binary_cross_entropy_with_logits(fake, zeros) +
              F.binary_cross_entropy_with_logits(fake, ones))
    return x0, grads, loss_d.detach(), teacher


def test_mask_step_is_one_prox_step_on_the_data_and_adversarial_loss():
    """The masks move by FISTA on miu * MSE + BCE(D(s), 1) alone: the L1
    term enters once, through the prox (an L1 gradient in the loss as
    well would shift every mask by another lr * lambda). The discriminator's
    loss is the three BCE terms on its raw logits."""
    model = gal(miu=0.7, mask_init='uniform')
    model.train()
    optim = wrappers(model, sparsity=0.2, d_lr=0.)  # D stays as it is
    data = batch()
    x0, grads, loss_d, teacher = mask_step_by_hand(model, data, 0.7)

    log = model.train_step(data, optim)
    for mask, x, g in zip(model.masks.values(), x0, grads):
        expected = F.softshrink(x - 0.01 * g, 0.01 * 0.2).clamp(min=0)
        torch.testing.assert_close(mask.weight.detach(), expected)
    torch.testing.assert_close(log['loss_d'], loss_d)
    assert log['loss_sparse'] == pytest.approx(
        0.2 * float(mask_values(model).abs().sum()))
    # 3 hidden layers 128-256-128 with ReLU, and a raw logit out (the
    # loss above applies the only sigmoid)
    linears = [m for m in model.discriminator.modules()
               if isinstance(m, nn.Linear)]
    assert [m.out_features for m in linears] == [128, 256, 128, 1]
    hidden = teacher
    for layer in linears[:-1]:
        hidden = F.relu(layer(hidden))
    torch.testing.assert_close(model.discriminator(teacher),
                               linears[-1](hidden))


def test_lambda_zeroes_exactly_the_masks_below_the_prox_threshold():
    """With a threshold lr * lambda inside the masks' range, exactly the
    masks whose gradient step lands at or below it become 0 (not merely
    small: an SGD step plus a threshold, or an L1 gradient, misses this
    set), those starting negative included, and the rest stay positive."""
    model = gal(mask_init='normal')
    model.train()
    lr, lam = 0.05, 10.  # threshold 0.5
    optim = wrappers(model, sparsity=lam, mask_lr=lr)
    data = batch()
    x0, grads, _, _ = mask_step_by_hand(model, data, 1.)
    step = torch.cat([(x - lr * g).flatten() for x, g in zip(x0, grads)])
    expected_zero = step <= lr * lam
    assert (torch.cat([x.flatten() for x in x0]) < 0).any()
    assert 0.2 < expected_zero.float().mean() < 0.9  # both kinds present

    log = model.train_step(data, optim)
    values = mask_values(model)
    assert torch.equal(values == 0, expected_zero)
    assert (values[~expected_zero] > 0).all()
    assert float(log['zero_filters']) == int(expected_zero.sum())


def test_masks_step_every_mask_interval_iterations():
    model = gal(mask_interval=3, mask_init='uniform')
    model.train()
    optim = wrappers(model)
    history = [mask_values(model)]
    for _ in range(6):
        model.train_step(batch(), optim)
        history.append(mask_values(model))
    moved = [not torch.equal(a, b) for a, b in zip(history, history[1:])]
    assert moved == [False, False, True, False, False, True]


def test_teacher_is_the_baseline_and_stays_frozen():
    baseline = MODELS.build(dict(type='ImageClassifier',
                                 **CLASSIFIERS['resnet20']))
    randomize_bn(baseline)
    model = gal('resnet20', BLOCKS, noise_dropout=0.1)
    model.load_state_dict(baseline.state_dict(), strict=False)
    reference = baseline.state_dict()
    for key, value in model.teacher.state_dict().items():
        assert torch.equal(value, reference[key]), key
        assert torch.equal(model.state_dict()[key], value), key
    model.train()
    assert not model.teacher.training
    assert all(not p.requires_grad for p in model.teacher.parameters())
    optim = wrappers(model)
    stepped = {id(p) for w in optim.values()
               for g in w.optimizer.param_groups for p in g['params']}
    assert not stepped & {id(p) for p in model.teacher.parameters()}
    for _ in range(3):
        model.train_step(batch(4, 3), optim)
    for key, value in model.teacher.state_dict().items():
        assert torch.equal(value, reference[key]), key  # buffers too
    assert not torch.equal(model.backbone.conv1.weight,
                           model.teacher.backbone.conv1.weight)


def test_noise_is_dropout_on_the_students_input_only():
    model = gal(noise_dropout=0.5)
    model.train()
    x = torch.ones(2, 1, 32, 32)
    noisy = model.noise(x)
    assert set(noisy.unique().tolist()) == {0., 2.}
    model.eval()
    assert torch.equal(model.noise(x), x)


# --- configuration errors ---------------------------------------------------


@pytest.mark.parametrize('structures,match', [
    ([dict(kind='block', names=['backbone.layer9.0'])],
     r"do not exist in the student: \['backbone.layer9.0'\]"),
    ([dict(kind='block', names=['backbone.layer*.7'])], 'matches no module'),
    ([dict(kind='block', types=['Bottleneck'])], "type 'Bottleneck'"),
    ([dict(kind='channel', types=['BasicBlock'])], 'kind must be one of'),
    ([dict(kind='block', types=['BasicBlock'], residual='relu')],
     'residual output'),
    ([dict(kind='branch', names=['backbone.layer1.0'])],
     'ModuleDict or ModuleList'),
    ([dict(kind='block', types=['BasicBlock'], residul='bn2')],
     r"unknown keys \['residul'\]"),
])
def test_bad_structures_are_named_at_build(structures, match):
    with pytest.raises(ValueError, match=match):
        gal('resnet20', structures)


@pytest.mark.parametrize('option,value', [('miu', -1.), ('noise_dropout', 1.),
                                          ('mask_interval', 0),
                                          ('mask_init', 'zeros')])
def test_bad_options_are_named(option, value):
    with pytest.raises(ValueError, match=option):
        gal(**{option: value})


def test_a_mask_that_cannot_be_removed_fails_the_check():
    """conv2 of a basic block adds into the residual stream: its filters
    cannot go alone."""
    model = gal('resnet20', [dict(kind='filter',
                                  names=['backbone.layer1.0.bn2'])])
    with pytest.raises(ValueError, match='tied to'):
        check_removal(model, torch.randn(2, 3, 32, 32))


# --- removal: the pruned model computes what the masked student did -------


def set_masks(model, pattern):
    """Random scales in (0.3, 2) with zeros where ``pattern(kind, i, j)``."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for kind in model.masks.kinds():
            for i, mask in enumerate(model.masks.of_kind(kind)):
                values = torch.rand(mask.weight.shape, generator=generator)
                values = 0.3 + 1.7 * values
                for j in range(values.numel()):
                    if pattern(kind, i, j):
                        values[j] = 0.
                mask.weight.copy_(values)


def removed_equals_masked(model, inputs, plain_cfg):
    """Remove, compare with the masked outputs, rebuild from the record."""
    model.eval()
    with torch.no_grad():
        masked = model.student_logits(inputs)
        # the surviving scales matter: a removal that dropped them (kept
        # the structures at scale 1) would be seen
        unscaled = copy.deepcopy(model)
        for mask in unscaled.masks.values():
            mask.weight.copy_((mask.weight > 0).float())
        assert not torch.allclose(unscaled.student_logits(inputs), masked,
                                  rtol=1e-3, atol=1e-4)
    summary = remove_masked_structures(model, inputs)
    with torch.no_grad():
        pruned = model(inputs, mode='tensor')
    torch.testing.assert_close(pruned, masked, rtol=1e-4, atol=1e-5)
    assert not hasattr(model, 'teacher') and not hasattr(model, 'masks')
    # a fresh plain classifier rebuilt from the record loads strictly
    fresh = MODELS.build(dict(type='ImageClassifier', **plain_cfg))
    restore_architecture(fresh, record_architecture(model))
    _load_checkpoint_to_model(fresh, dict(state_dict=model.state_dict()),
                              strict=True)
    fresh.eval()
    with torch.no_grad():
        torch.testing.assert_close(fresh(inputs, mode='tensor'), pruned)
    return summary


def test_filter_removal_is_exact_and_keeps_a_channel_per_layer():
    model = gal()
    # conv1: every filter off (one stays); others: every third off
    set_masks(model, lambda kind, i, j: i == 0 or j % 3 == 1)
    inputs = torch.randn(6, 1, 32, 32)
    summary = removed_equals_masked(model, inputs, CLASSIFIERS['lenet5'])
    assert summary.filters == {
        'backbone.features.0': (1, 6),
        'backbone.features.3': (11, 16),
        'backbone.features.6': (80, 120),
        'backbone.classifier.0': (56, 84)
    }
    assert model.backbone.features[3].weight.shape[:2] == (11, 1)
    assert model.backbone.classifier[2].weight.shape == (10, 56)


def test_filter_removal_through_bn_relu_and_a_hidden_fc():
    """VGG-style conv -> BN -> ReLU -> max-pool and the classifier's hidden
    layer (mmpretrain's VGG and StackedLinearClsHead, as in the paper's
    VGG-16 config), on a small VGG-11."""
    vgg = dict(
        backbone=dict(type='VGG', depth=11, norm_cfg=dict(type='BN'),
                      with_last_pool=False, out_indices=(4, )),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='StackedLinearClsHead', num_classes=10,
                  in_channels=512, mid_channels=[32],
                  norm_cfg=dict(type='BN1d')))
    model = MODELS.build(dict(
        type='GAL', **vgg, structures=[
            dict(kind='filter', types=['ConvModule'], within='backbone'),
            dict(kind='filter', names=['head.layers.0'])]))
    randomize_bn(model)
    set_masks(model, lambda kind, i, j: j % 4 == 2)
    summary = removed_equals_masked(model, torch.randn(3, 3, 32, 32), vgg)
    assert summary.filters['backbone.features.0.conv'] == (48, 64)
    assert summary.filters['head.layers.0.fc'] == (24, 32)


def test_block_removal_keeps_the_projection_of_a_downsampling_block():
    model = gal('resnet20', BLOCKS)
    randomize_bn(model)
    # blocks: layer1.1 (identity) and layer2.0 (downsampling) off
    set_masks(model, lambda kind, i, j: i in (1, 3))
    summary = removed_equals_masked(model, torch.randn(4, 3, 32, 32),
                                    CLASSIFIERS['resnet20'])
    assert summary.blocks == ['backbone.layer1.1', 'backbone.layer2.0']
    identity = model.backbone.layer1[1]
    projection = model.backbone.layer2[0]
    assert isinstance(identity, ResidualShortcut) and \
        not list(identity.parameters())
    assert isinstance(projection, ResidualShortcut)
    assert projection.downsample[0].weight.shape == (32, 16, 1, 1)
    assert not isinstance(model.backbone.layer2[1], ResidualShortcut)
    assert sum(p.numel() for p in model.parameters()) < sum(
        p.numel() for p in MODELS.build(dict(
            type='ImageClassifier', **CLASSIFIERS['resnet20'])).parameters())


def test_branch_removal_shrinks_the_next_layers_inputs():
    net = dict(
        backbone=dict(type='CIFARGoogLeNet', widen_factor=1 / 16),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=10, in_channels=64))
    model = googlenet_gal(structures=[
        dict(kind='branch', names=['backbone.inception_a3.branches.*',
                                   'backbone.inception_b3.branches.*',
                                   'backbone.inception_b5.branches.*'])
    ])
    randomize_bn(model)
    # a3: the 5x5 branch off; b3: 1x1 and pool off; b5: 3x3 off
    set_masks(model, lambda kind, i, j: i in (2, 4, 7, 9))
    summary = removed_equals_masked(model, torch.randn(2, 3, 32, 32), net)
    assert summary.branches == [
        'backbone.inception_a3.branches.b5x5',
        'backbone.inception_b3.branches.b1x1',
        'backbone.inception_b3.branches.pool',
        'backbone.inception_b5.branches.b3x3'
    ]
    backbone = model.backbone
    assert list(backbone.inception_a3.branches) == ['b1x1', 'b3x3', 'pool']
    # b3 reads 4 + 8 + 2 = 14 channels instead of 16 and writes 12 + 6
    assert backbone.inception_b3.branches['b3x3'][0].conv.weight.shape[
        1] == 14
    assert backbone.inception_a4.branches['b1x1'].conv.weight.shape[1] == 18
    assert model.head.fc.weight.shape == (10, 64 - 24)


def test_a_concat_keeps_one_branch():
    model = googlenet_gal(structures=[
        dict(kind='branch', names=['backbone.inception_b5.branches.*'])
    ])
    set_masks(model, lambda kind, i, j: True)
    summary = remove_masked_structures(model, torch.randn(2, 3, 32, 32))
    assert len(summary.branches) == 3
    assert list(model.backbone.inception_b5.branches) == ['b1x1']
    assert model.head.fc.weight.shape == (10, 24)


# --- the configs --------------------------------------------------------------


def test_gal_configs_chain_their_stages_and_build():
    """Each GAL config loads its baseline's last checkpoint, each fine-tune
    config the GAL run's; one model per architecture is built (the masks
    find their structures in the real networks)."""
    import glob
    import os.path as osp

    from mmengine.config import Config
    from conftest import config_path
    built = set()
    for path in sorted(glob.glob(config_path('gal', '*_gal-*.py'))):
        if path.endswith('_finetune.py'):
            continue
        name = osp.basename(path)[:-3]
        task = name.split('_gal-')[0]
        cfg = Config.fromfile(path)
        base = Config.fromfile(config_path('gal', f'{task}_gal_baseline.py'))
        assert cfg.load_from == (f'work_dirs/{task}_gal_baseline/'
                                 f'epoch_{base.train_cfg.max_epochs}.pth')
        assert cfg.model.type == 'GAL' and cfg.custom_hooks == [
            dict(type='GALRemovalHook')]
        assert cfg.optim_wrapper.masks.optimizer.sparsity == float(
            name.split('_gal-')[1])
        tune = Config.fromfile(path[:-3] + '_finetune.py')
        assert tune.model.type == 'ImageClassifier'
        assert tune.load_from == (f'work_dirs/{name}/'
                                  f'epoch_{cfg.train_cfg.max_epochs}.pth')
        arch = cfg.model.backbone.type
        if arch not in built:
            built.add(arch)
            model = MODELS.build(cfg.model)
            assert model.masks.sizes()
    assert built == {'LeNet5', 'VGG', 'CIFARResNet', 'CIFARGoogLeNet'}


def test_the_discriminator_learns_from_the_student_without_noise():
    """The paper's noise is the pruned network's, in its update only: the
    discriminator's fake input is the student on the clean batch, while the
    student's loss sees the noisy one."""
    model = gal(noise_dropout=0.5)
    wrapper = wrappers(model)
    model.train()
    data = batch()
    seen = []
    handle = model.discriminator.register_forward_hook(
        lambda m, inputs, out: seen.append(inputs[0].detach().clone()))
    state = copy.deepcopy(model.state_dict())
    model.train_step(dict(data), wrapper)
    handle.remove()
    model.load_state_dict(state)  # the weights and masks of that step
    model.train()
    inputs = model.data_preprocessor(dict(data), True)['inputs']
    with torch.no_grad():
        clean = model.student_logits(inputs)
        noisy = model.student_logits(model.noise(inputs))
    real, fake, adversarial = seen
    torch.testing.assert_close(fake, clean)
    assert not torch.allclose(adversarial, clean)
    torch.testing.assert_close(adversarial, noisy)
