"""DCP: auxiliary losses (stage 1), greedy channel selection (stage 2),
the pruned checkpoint in a plain classifier config (stage 3)."""
import copy
import glob
import math
import os.path as osp

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from conftest import config_path
from models import CLASSIFIERS
from runner_utils import build_runner, small_cfg
from test_tools_and_readme import load_tool
from prunedet.dcp import GreedyChannelSelection, channel_scores
from prunedet.dcp.objective import layer_objective
from prunedet.pruning.groups import ParamSlice


@pytest.fixture(autouse=True, scope='module')
def one_thread():
    """These networks are tiny: on a shared 2-core machine a second intra-op
    thread mostly waits for the first (measured here: ~5x slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def dcp_classifier(arch, **options):
    return MODELS.build(
        dict(type='DCPClassifier', **CLASSIFIERS[arch], **options))


# --- the greedy selection on a layer whose answer is known ----------------


def orthogonal_inputs(scales, pixels=64):
    """(1, C, pixels, 1) inputs whose channels are exactly orthogonal, with
    squared norms ``scales**2``: the gradient of the reconstruction at zero
    weights is then W*[:, j] * scales[j]**2 per channel, independent of the
    other channels."""
    q, _ = torch.linalg.qr(torch.randn(pixels, len(scales)))
    x = q * torch.tensor(scales)
    return x.t().reshape(1, len(scales), pixels, 1)


def reconstruction_problem(trained, scales):
    layer = nn.Conv2d(trained.shape[1], trained.shape[0], 1, bias=False)
    layer.weight.data.copy_(trained)
    x = orthogonal_inputs(scales)
    target = F.conv2d(x, trained)

    def objective():
        mse = F.mse_loss(layer(x), target)
        return dict(loss=mse, loss_mse=mse.detach())

    return layer, objective


def test_greedy_adds_the_channel_with_the_largest_gradient_norm():
    # channel 0 has by far the largest weights but (almost) no input
    # signal: a magnitude criterion keeps it first, DCP's gradient last
    trained = torch.tensor([[10., 1., 2., .5], [-10., 1., -2., .5],
                            [10., -1., 2., -.5]]).reshape(3, 4, 1, 1)
    scales = [0.01, 3., 1., 1.]
    layer, objective = reconstruction_problem(trained, scales)
    # the gradient norms at zero weights, computed independently
    w = torch.zeros_like(trained, requires_grad=True)
    x = orthogonal_inputs(scales)
    F.mse_loss(F.conv2d(x, w), F.conv2d(x, trained)).backward()
    expected = w.grad.transpose(0, 1).flatten(1).norm(dim=1)
    selection = GreedyChannelSelection(
        ParamSlice(layer, 'weight', 1), 4, objective, grad_batches=1,
        sub_steps=5)
    torch.testing.assert_close(selection.scores(), expected)
    assert int(expected.argmax()) == 1
    # with orthogonal inputs the sub-problems do not change the other
    # channels' gradients: the order is that of |W*_j| * scale_j^2
    assert selection.run(4) == [1, 2, 3, 0]


def test_scores_are_frobenius_norms_of_the_whole_slice():
    """The paper's ||dL/dW_j||_F, not the public code's sum of kernel norms
    (which would prefer channel 1 here), and one score per channel of the
    group when a Linear reads several positions of a channel."""
    grad = torch.zeros(2, 2, 1, 2)
    grad[0, 0] = torch.tensor([3., 0.])  # channel 0: one kernel of norm 3
    grad[:, 1, 0, 0] = 2.  # channel 1: two kernels of norm 2
    conv = nn.Conv2d(2, 2, (1, 2))
    scores = channel_scores(grad, ParamSlice(conv, 'weight', 1), 2)
    torch.testing.assert_close(scores, torch.tensor([3., math.sqrt(8.)]))
    linear = nn.Linear(4, 3)  # reads 2 channels x 2 positions (a flatten)
    flat = ParamSlice(linear, 'weight', 1, torch.arange(4),
                      torch.tensor([0, 0, 1, 1]))
    g = torch.randn(3, 4)
    torch.testing.assert_close(
        channel_scores(g, flat, 2),
        torch.stack([g[:, :2].norm(), g[:, 2:].norm()]))


def test_selection_keeps_its_budget_and_zeroes_the_other_channels():
    trained = torch.randn(3, 6, 1, 1)
    layer, objective = reconstruction_problem(trained, [1.] * 6)
    selection = GreedyChannelSelection(
        ParamSlice(layer, 'weight', 1), 6, objective, grad_batches=1,
        sub_steps=20)
    nothing = float(objective()['loss_mse'])  # every weight at zero
    kept = selection.run(2)
    assert len(kept) == len(set(kept)) == 2
    dropped = selection.unselected()
    assert sorted(kept + dropped) == list(range(6))
    assert torch.count_nonzero(layer.weight[:, dropped]) == 0
    assert torch.count_nonzero(layer.weight[:, kept]) > 0
    # two channels (warm-started, then solved) explain part of the target
    assert float(objective()['loss_mse']) < nothing * 0.9


def test_a_diverging_sub_problem_stops_selection():
    """NaN scores would rank channels by index: an error instead."""
    layer, objective = reconstruction_problem(torch.randn(3, 4, 1, 1),
                                              [10.] * 4)
    selection = GreedyChannelSelection(
        ParamSlice(layer, 'weight', 1), 4, objective, grad_batches=1,
        sub_steps=50, optimizer=dict(type='SGD', lr=1e3), name='conv')
    with pytest.raises(FloatingPointError, match='DCP selection of conv'):
        selection.run(3)


# --- the joint loss (stage 2) and the auxiliary losses (stage 1) ----------


def lenet_batch(n=8):
    inputs = torch.randn(n, 1, 32, 32)
    labels = torch.randint(0, 10, (n, ))
    return inputs, labels


@pytest.mark.parametrize('layer,point', [('backbone.features.3', 0),
                                         ('backbone.features.6', None)])
def test_joint_loss_is_reconstruction_plus_the_next_heads_ce(layer, point):
    """Fails if either term is dropped, mis-weighted, or taken from the wrong
    head: the loss that is backpropagated is recomputed by hand."""
    model = dcp_classifier('lenet5', aux_points=['backbone.features.5'])
    model.eval()
    original = copy.deepcopy(model)
    with torch.no_grad():  # the layer being pruned: half its inputs cut
        dict(model.named_modules())[layer].weight[:, ::2] = 0
    inputs, labels = lenet_batch()
    objective = layer_objective(model, original, layer, point,
                                iter([(inputs, labels)]), 2., 3.)
    out = objective()
    seen = {}
    hooks = [
        dict(m.named_modules())[layer].register_forward_hook(
            lambda _m, _i, o, key=key: seen.__setitem__(key, o))
        for key, m in (('pruned', model), ('original', original))
    ]
    with torch.no_grad():
        original(inputs, mode='tensor')
        if point is None:
            logits = model(inputs, mode='tensor')
        else:
            feats = model.backbone.features[:6](inputs)
            logits = model.aux_heads[point](feats)
    for h in hooks:
        h.remove()
    mse = F.mse_loss(seen['pruned'], seen['original'])
    ce = F.cross_entropy(logits, labels)
    assert mse > 1e-4 and ce > 1e-2
    torch.testing.assert_close(out['loss'].detach(), 2. * mse + 3. * ce)
    torch.testing.assert_close(out['loss_mse'], mse)
    torch.testing.assert_close(out['loss_ce'], ce)


def test_aux_losses_train_their_heads_and_scale_the_networks_gradient():
    """Each auxiliary head learns from its full CE; the layers before the
    point receive that CE's gradient times its aux weight (the code)."""

    def aux_grads(weight):
        torch.manual_seed(0)
        model = dcp_classifier(
            'resnet20', aux_points=['backbone.layer1.2', 'backbone.layer2.1'],
            aux_weights=[weight, 1.])
        inputs = torch.randn(4, 3, 32, 32)
        samples = [DataSample().set_gt_label(i) for i in range(4)]
        losses = model.loss(inputs, samples)
        assert set(losses) == {'loss', 'loss_aux0', 'loss_aux1'}
        losses['loss_aux0'].backward()
        return (model.backbone.conv1.weight.grad,
                model.aux_heads[0].fc.weight.grad,
                losses['loss_aux0'].item())

    stem, head, loss = aux_grads(1.)
    stem_w, head_w, loss_w = aux_grads(0.25)
    assert head.abs().sum() > 0 and stem.abs().sum() > 0
    assert loss_w == pytest.approx(loss)
    torch.testing.assert_close(head_w, head)
    torch.testing.assert_close(stem_w, 0.25 * stem)


def test_bad_aux_points_are_named():
    with pytest.raises(ValueError, match=r"\['backbone.layer9'\]"):
        dcp_classifier('resnet20', aux_points=['backbone.layer9'])
    with pytest.raises(ValueError, match='aux_weights'):
        dcp_classifier(
            'resnet20', aux_points=['backbone.layer1'], aux_weights=[1., 1.])


# --- the three stages with the runner and the tools -----------------------


@pytest.fixture(scope='module')
def resnet_stage1(tmp_path_factory, mnist_root):
    """A ResNet-20 stage-1 checkpoint (one short epoch on small data)."""
    work = tmp_path_factory.mktemp('dcp_r20_stage1')
    cfg = small_cfg('dcp/resnet20_mnist_dcp_stage1.py', work, mnist_root,
                    **{'train_cfg.max_epochs': 1, 'load_from': None})
    build_runner(cfg).train()
    return osp.join(str(work), 'epoch_1.pth')


def stage2_cfg(tmp_path, mnist_root, checkpoint, **options):
    return small_cfg(
        'dcp/resnet20_mnist_dcp_stage2.py', tmp_path, mnist_root, **{
            'load_from': checkpoint,
            'train_dataloader.batch_size': 8,
            'train_cfg.samples': 8,
            'train_cfg.sub_steps': 1,
            **options
        })


LAYERS = ['backbone.layer1.0.conv2', 'backbone.layer2.1.conv2',
          'backbone.layer3.2.conv2']


def test_each_layer_keeps_its_budget_and_nothing_else_changes(
        tmp_path, mnist_root, resnet_stage1):
    before = torch.load(resnet_stage1, weights_only=True)['state_dict']
    cfg = stage2_cfg(tmp_path, mnist_root, resnet_stage1, **{
        'train_cfg.layers': LAYERS,
        'train_cfg.pruning_rate': 0.7
    })
    build_runner(cfg).train()
    ckpt = torch.load(osp.join(str(tmp_path), 'epoch_1.pth'),
                      weights_only=True)
    after = ckpt['state_dict']
    assert not [k for k in after if 'aux' in k]
    assert not [k for k in ckpt['architecture']['channels'] if 'aux' in k]
    assert 'optimizer' not in ckpt
    changed = {}
    for name in LAYERS:
        block = name[:-len('.conv2')]
        total = before[f'{name}.weight'].shape[1]
        keep = total - math.floor(total * 0.7)  # 16 -> 5, 32 -> 10, 64 -> 20
        assert after[f'{name}.weight'].shape[1] == keep
        assert after[f'{block}.conv1.weight'].shape[0] == keep
        changed.update({
            f'{block}.conv1.weight': 0,
            f'{name}.weight': 1,
            **{f'{block}.bn1.{k}': 0
               for k in ('weight', 'bias', 'running_mean', 'running_var')}
        })
    for key, value in after.items():
        if key in changed:
            shape = list(before[key].shape)
            shape[changed[key]] = value.shape[changed[key]]
            assert list(value.shape) == shape, key
        else:  # the residual stream and every other layer keep their size
            assert value.shape == before[key].shape, key


def test_stage2_refuses_what_it_cannot_prune(tmp_path, mnist_root,
                                             resnet_stage1):
    # a layer reading the residual stream: checked before any selection
    cfg = stage2_cfg(tmp_path, mnist_root, resnet_stage1,
                     **{'train_cfg.layers': ['backbone.layer1.1.conv1']})
    with pytest.raises(ValueError, match='also read by'):
        build_runner(cfg).train()
    for option, value, match in (
            ('train_cfg.pruning_rate', 1.0, 'pruning_rate must be'),
            ('train_cfg.layers', ['backbone.layer1.9.conv2'], 'layer1.9'),
            ('train_cfg.layers', ['backbone.layer1.0.bn1'], 'BatchNorm2d')):
        cfg = stage2_cfg(tmp_path, mnist_root, resnet_stage1,
                         **{option: value})
        with pytest.raises(ValueError, match=match):
            build_runner(cfg).train()
    cfg = stage2_cfg(tmp_path, mnist_root, None)
    with pytest.raises(RuntimeError, match='set load_from'):
        build_runner(cfg).train()


def fine_tuned_from(start: str, tuned: str) -> float:
    """Cosine similarity of the weights that two checkpoints share by name
    and shape: about 1 after a short fine-tuning, about 0 for a model that
    started from a new initialisation."""
    a, b = (torch.load(f, weights_only=True)['state_dict']
            for f in (start, tuned))
    keys = sorted(k for k in a if k.endswith('weight') and k in b
                  and a[k].shape == b[k].shape)
    assert keys
    a, b = (torch.cat([s[k].flatten() for k in keys]) for s in (a, b))
    return float(torch.cosine_similarity(a, b, 0))


def test_every_stage1_config_fine_tunes_its_baseline():
    from mmengine.config import Config
    for path in glob.glob(config_path('dcp', '*_stage1.py')):
        cfg = Config.fromfile(path)
        task = osp.basename(path).replace('_dcp_stage1.py', '')
        baseline = Config.fromfile(config_path('classification',
                                               f'{task}.py'))
        assert cfg.load_from == (f'work_dirs/{task}/epoch_'
                                 f'{baseline.train_cfg.max_epochs}.pth')
        # the public code's stage-1 schedule: 100 epochs, steps at 40 and
        # 60 (scaled like the baseline's on MNIST)
        epochs = cfg.train_cfg.max_epochs
        assert [m / epochs for m in cfg.param_scheduler.milestones] == \
            pytest.approx([0.4, 0.6], abs=0.05)


def test_stage1_to_stage3_with_the_tools(tmp_path, mnist_root):
    """LeNet-5 through tools/train.py and tools/test.py: the stage-2
    checkpoint loads strictly in the plain stage-3 config and scores what
    stage 2 validated; stage 3 fine-tunes it."""
    options = [
        'train_dataloader.batch_size=32', 'train_dataloader.num_workers=0',
        'val_dataloader.num_workers=0', 'test_dataloader.num_workers=0',
        'train_cfg.max_epochs=1', f'experiment_name=dcp_{id(tmp_path)}'
    ]
    train, test = load_tool('train').main, load_tool('test').main

    def run(stage, *extra):
        work = str(tmp_path / f'stage{stage}')
        runner = train([
            config_path('dcp', f'lenet5_mnist_dcp_stage{stage}.py'),
            '--data-root', mnist_root, '--work-dir', work, '--cfg-options',
            *options, *extra
        ])
        with open(osp.join(work, 'last_checkpoint')) as f:
            return runner, f.read().strip()

    train([
        config_path('classification', 'lenet5_mnist.py'), '--data-root',
        mnist_root, '--work-dir', str(tmp_path / 'baseline'),
        '--cfg-options', *options
    ])
    baseline = osp.join(str(tmp_path / 'baseline'), 'epoch_1.pth')
    _, stage1 = run(1, f'load_from={baseline}')
    # stage 1 fine-tuned the baseline (a fresh start would share nothing
    # with it), with auxiliary heads of its own
    assert fine_tuned_from(baseline, stage1) > 0.9
    runner, stage2 = run(2, f'load_from={stage1}', 'train_cfg.samples=16',
                         'train_cfg.sub_steps=1',
                         'train_dataloader.batch_size=16')
    val = runner.message_hub.get_scalar('val/accuracy/top1').current()
    stage3_cfg = config_path('dcp', 'lenet5_mnist_dcp_stage3.py')
    metrics = test([
        stage3_cfg, stage2, '--data-root', mnist_root, '--work-dir',
        str(tmp_path / 'test2'), '--cfg-options', *options
    ])
    assert metrics['accuracy/top1'] == pytest.approx(val, abs=1e-6)
    kept = torch.load(stage2, weights_only=True)['state_dict']
    # 6 -> 3, 16 -> 8, 120 -> 60, 84 -> 42 input channels
    assert [kept[f'backbone.{k}.weight'].shape[1]
            for k in ('features.3', 'features.6', 'classifier.0',
                      'classifier.2')] == [3, 8, 60, 42]
    _, stage3 = run(3, f'load_from={stage2}')
    metrics = test([
        stage3_cfg, stage3, '--data-root', mnist_root, '--work-dir',
        str(tmp_path / 'test3'), '--cfg-options', *options
    ])
    assert torch.load(stage3, weights_only=True)['state_dict'][
        'backbone.features.6.weight'].shape[1] == 8
    assert fine_tuned_from(stage2, stage3) > 0.9  # the selected weights
