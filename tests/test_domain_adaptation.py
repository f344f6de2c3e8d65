"""Unsupervised domain adaptation: Office-31 data, MMD, TCP, pruning the
VGG-16 backbone and the adaptation head (issue 5)."""
import glob
import itertools
import os
import os.path as osp
import shutil

import mmengine
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.logging import MessageHub
from mmengine.registry import DefaultScope
from mmpretrain.registry import DATASETS, MODELS

from conftest import ROOT, config_path
from prunedet.pruning.soft import mask_channels
from prunedet.datasets.office31 import OFFICE31_CLASSES
from prunedet.datasets.synthetic_office import write_office31
from prunedet.models.domain_adaptation import TorchvisionVGG16, mk_mmd
from prunedet.models.domain_adaptation.mmd_classifier import \
    training_iters
from prunedet.pruning.groups import ChannelGraph
from prunedet.pruning.architecture import restore_architecture
from prunedet.pruning.surgery import remove_channels
from prunedet.pruning.tracing import trace_forward
from prunedet.registry import CRITERIA
from prunedet.utils.config import load_config
from test_tools_and_readme import load_tool

METHODS = ('source_only', 'mmd', 'rpgp', 'tcp')
TRANSFERS = {
    'a2w': ('amazon', 'webcam'),
    'a2d': ('amazon', 'dslr'),
    'w2a': ('webcam', 'amazon'),
    'w2d': ('webcam', 'dslr'),
    'd2w': ('dslr', 'webcam'),
    'd2a': ('dslr', 'amazon'),
}
PIPELINE = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
_count = itertools.count()


@pytest.fixture(autouse=True)
def _mmpretrain_scope():
    """Build outside a Runner as the configs do (other tests may leave
    mmdet's scope current)."""
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        yield


@pytest.fixture(scope='module')
def office_root(tmp_path_factory):
    """Two domains, 31 classes, two 32x32 JPEGs per class and domain."""
    return write_office31(
        str(tmp_path_factory.mktemp('office31')), ('amazon', 'webcam'),
        images_per_class=2, size=32)


def tiny_model_cfg(cfg):
    """The configs' model at 1/16 width with 32-unit fc6/fc7, a 16-unit
    bottleneck and a 2x2 pool before fc6 (each conv5 channel feeds fc6
    through four flattened positions)."""
    cfg.model.backbone.update(
        widen_factor=1 / 16, fc_channels=32, pool_size=2, init_cfg=None)
    cfg.model.neck.update(in_channels=32, out_channels=16)
    cfg.model.head.in_channels = 16
    return cfg


def tiny_cfg(method, work_dir, data_root, max_iters=4):
    """A real Office-31 transfer config on 32x32 images, a few iterations."""
    cfg = load_config(
        config_path('domain_adaptation', f'vgg16_office31_a2w_{method}.py'),
        work_dir=str(work_dir),
        data_root=data_root)
    tiny_model_cfg(cfg)
    train = cfg.train_dataloader.dataset
    train.source.pipeline = train.target.pipeline = PIPELINE
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[key].num_workers = 0
    for key in ('val_dataloader', 'test_dataloader'):
        cfg[key].dataset.pipeline = PIPELINE
    cfg.merge_from_dict({
        'train_dataloader.batch_size': 8,
        'train_cfg.max_iters': max_iters,
        'train_cfg.val_interval': max_iters,
        'default_hooks.checkpoint.interval': max_iters,
        'default_hooks.logger.interval': 1,
        'experiment_name': f'da_{os.getpid()}_{next(_count)}',
    })
    return cfg


def build_tiny_model(cfg_file='vgg16_office31_a2w_mmd.py', **model):
    cfg = tiny_model_cfg(
        Config.fromfile(config_path('domain_adaptation', cfg_file)))
    cfg.model.update(model, data_preprocessor=cfg.data_preprocessor)
    return MODELS.build(cfg.model)


# --- MMD ------------------------------------------------------------------


def test_mmd_is_zero_for_identical_batches_and_positive_for_shifted_ones():
    x = torch.randn(16, 8)
    assert mk_mmd(x, x.clone()).item() == 0.
    assert mk_mmd(x, x[torch.randperm(16)]).abs().item() < 1e-6
    assert mk_mmd(x, x + 0.5).item() > 1e-3
    # a shifted batch drawn independently: still clearly above the noise
    # level of two batches from the same distribution
    same = mk_mmd(torch.randn(64, 8), torch.randn(64, 8)).item()
    shifted = mk_mmd(torch.randn(64, 8), torch.randn(64, 8) + 1.).item()
    assert 0. <= same < shifted / 4


def test_mmd_matches_the_kernel_formula_and_its_gradient_aligns():
    a, b = torch.tensor([[0.], [1.]]), torch.tensor([[2.], [4.]])

    def k(u, v, bw):
        return sum(torch.exp(-(u - v.T)**2 / (bw * s)) for s in (0.5, 1, 2))

    expected = (k(a, a, 2.).mean() + k(b, b, 2.).mean() -
                2 * k(a, b, 2.).mean())
    got = mk_mmd(a, b, kernel_mul=2., kernel_num=3, bandwidth=2.)
    torch.testing.assert_close(got, expected)
    # default bandwidth: the mean squared distance between distinct samples
    # (0-1, 0-2, 0-4, 1-2, 1-4, 2-4 squared, both ways) / (4 * 4 - 4)
    mean_sq = 2 * (1 + 4 + 16 + 1 + 9 + 4) / 12
    torch.testing.assert_close(
        mk_mmd(a, b, kernel_num=3), mk_mmd(a, b, 2., 3, mean_sq))
    # descending the MMD moves the target features towards the source
    target = (torch.randn(32, 4) + 2.).requires_grad_()
    source = torch.randn(32, 4)
    before = mk_mmd(source, target)
    before.backward()
    with torch.no_grad():
        after = mk_mmd(source, target - 0.5 * target.grad)
    assert after < before


def test_lambda_ramps_up_after_the_warm_up_with_the_runner_progress():
    model = build_tiny_model()
    assert model.mmd_lambda(0, 100) == 0.
    assert model.mmd_lambda(50, 100) == pytest.approx(0.9866, abs=1e-4)
    assert model.mmd_lambda(100, 100) == pytest.approx(1., abs=1e-4)
    assert model.mmd_lambda() == 1.  # outside a run: the final weight
    hub = MessageHub.get_instance('test_da_progress')
    hub.update_info('iter', 25)
    hub.update_info('max_iters', 100)
    try:
        assert training_iters() == (25, 100)
    finally:
        hub.update_info('max_iters', 0)  # no run: full lambda
    # source-only warm-up, then the same ramp over the remaining iterations
    warm = build_tiny_model(warmup_iters=40)
    assert warm.mmd_lambda(0, 100) == warm.mmd_lambda(39, 100) == 0.
    assert warm.mmd_lambda(40, 100) == 0.
    assert warm.mmd_lambda(70, 100) == pytest.approx(
        model.mmd_lambda(50, 100))
    constant = build_tiny_model(
        lambda_ramp='constant', mmd_weight=0.3, warmup_iters=10)
    assert constant.mmd_lambda(9, 100) == 0.
    assert constant.mmd_lambda(10, 100) == 0.3
    with pytest.raises(ValueError, match='lambda_ramp'):
        build_tiny_model(lambda_ramp='linear')
    with pytest.raises(ValueError, match='warmup_iters'):
        build_tiny_model(warmup_iters=0.25)


# --- data -----------------------------------------------------------------


def test_office31_reads_a_domain_and_names_what_is_missing(
        office_root, tmp_path):
    webcam = DATASETS.build(
        dict(
            type='Office31',
            data_root=office_root,
            domain='webcam',
            pipeline=PIPELINE))
    assert len(webcam) == 62 and webcam.metainfo['classes'] == \
        OFFICE31_CLASSES
    for i in (0, 37, 61):
        info = webcam.get_data_info(i)
        folder = osp.basename(osp.dirname(info['img_path']))
        assert OFFICE31_CLASSES[info['gt_label']] == folder
    assert webcam[0]['inputs'].shape == (3, 32, 32)

    with pytest.raises(FileNotFoundError, match="'dslr'.*dslr/images"):
        DATASETS.build(
            dict(type='Office31', data_root=office_root, domain='dslr'))
    partial = str(tmp_path / 'partial')
    shutil.copytree(office_root, partial)
    for name in ('ruler', 'trash_can'):
        shutil.rmtree(osp.join(partial, 'amazon', 'images', name))
    with pytest.raises(FileNotFoundError,
                       match=r"\['ruler', 'trash_can'\]"):
        DATASETS.build(
            dict(type='Office31', data_root=partial, domain='amazon'))


def build_pairs(office_root, **source):
    domain = dict(type='Office31', data_root=office_root, pipeline=PIPELINE)
    return DATASETS.build(
        dict(
            type='DomainPairDataset',
            source=dict(domain, domain='amazon', **source),
            target=dict(domain, domain='webcam')))


def test_pairs_carry_a_target_image_but_no_target_label(office_root):
    pairs = build_pairs(office_root)
    assert len(pairs) == 62 and pairs.metainfo['classes'] == OFFICE31_CLASSES
    item = pairs[5]
    assert set(item) == {'inputs', 'data_samples', 'target_inputs'}
    assert item['data_samples'].gt_label.item() == \
        pairs.source.get_data_info(5)['gt_label']
    assert 'amazon' in item['data_samples'].img_path
    assert item['target_inputs'].shape == item['inputs'].shape
    # the target image is a webcam image (darker than amazon's white
    # background), and the wrapper hands out nothing else of the target
    webcam = torch.stack([pairs[i]['target_inputs'] for i in range(8)])
    amazon = torch.stack([pairs[i]['inputs'] for i in range(8)])
    assert webcam.float().mean() < amazon.float().mean() - 20

    with pytest.raises(ValueError, match='classes differ'):
        build_pairs(office_root, metainfo=dict(classes=OFFICE31_CLASSES[:5]))


# --- model ----------------------------------------------------------------


def test_backbone_names_match_torchvision_and_load_a_vgg16_file(tmp_path):
    import torchvision
    with torch.device('meta'):
        ours = TorchvisionVGG16().state_dict()
        theirs = torchvision.models.vgg16().state_dict()
    fc8 = {'classifier.6.weight', 'classifier.6.bias'}
    assert set(theirs) - set(ours) == fc8 and set(ours) < set(theirs)
    assert all(ours[k].shape == theirs[k].shape for k in ours)

    small = dict(widen_factor=1 / 16, fc_channels=32, pool_size=2)
    saved = TorchvisionVGG16(**small).state_dict()
    saved.update({k: torch.zeros(10) for k in fc8})
    torch.save(saved, str(tmp_path / 'vgg16.pth'))
    loaded = TorchvisionVGG16(
        **small,
        init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path /
                                                        'vgg16.pth')))
    loaded.init_weights()
    for name, value in loaded.state_dict().items():
        assert torch.equal(value, saved[name]), name


def _batch(office_root, size=4):
    pairs = build_pairs(office_root)
    return pseudo_collate([pairs[i] for i in range(0, 62, 62 // size)][:size])


def test_a_train_step_optimises_source_ce_plus_mmd(office_root):
    from mmengine.optim import OptimWrapper
    model = build_tiny_model()
    model.init_weights()
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    losses = model.train_step(_batch(office_root), optim)
    assert {'loss', 'loss_mmd', 'mmd', 'mmd_lambda',
            'feat_var'} <= set(losses)
    assert losses['mmd'] > 0 and losses['loss_mmd'] > 0
    assert losses['feat_var'] > 0
    changed = [
        n for n, p in model.named_parameters()
        if not torch.equal(p, before[n])
    ]
    assert 'backbone.features.0.weight' in changed and 'neck.fc.weight' in \
        changed and 'head.fc.weight' in changed

    source_only = build_tiny_model('vgg16_office31_a2w_source_only.py')
    losses = source_only.train_step(_batch(office_root), optim)
    assert set(losses) == {'loss'}
    with pytest.raises(ValueError, match='target_inputs'):
        batch = _batch(office_root)
        del batch['target_inputs']
        model.train_step(batch, optim)


def test_soft_zeroed_then_removed_channels_keep_outputs_backbone_and_head():
    """The groups reach every conv, fc6, fc7 and the bottleneck; removing
    channels that were zeroed leaves the eval outputs unchanged."""
    model = build_tiny_model()
    model.eval()
    x = torch.randn(4, 3, 32, 32)
    graph = ChannelGraph(model, x, trace_forward(model),
                         ['backbone', 'neck'])
    names = [g.name for g in graph.groups()]
    convs = [f'backbone.features.{i}' for i in (0, 2, 5, 7, 10, 12, 14, 17,
                                                19, 21, 24, 26, 28)]
    assert names == convs + [
        'backbone.classifier.0', 'backbone.classifier.3', 'neck.fc'
    ]  # the classifier keeps its 31 outputs
    params = {n: p.shape for n, p in model.named_parameters()}

    chosen = {}
    for group in graph.groups():
        chosen[group.name] = torch.randperm(
            group.num_channels)[:group.num_channels // 4 + 1]
        mask_channels(group, chosen[group.name])
    with torch.no_grad():
        soft = model(x, mode='tensor')
    for name, channels in chosen.items():
        group = next(g for g in graph.groups() if g.name == name)
        remove_channels(graph, group, channels.tolist())
    with torch.no_grad():
        hard = model(x, mode='tensor')
    torch.testing.assert_close(hard, soft, atol=1e-5, rtol=1e-4)

    shapes = {n: p.shape for n, p in model.named_parameters()}
    conv5 = len(chosen['backbone.features.28'])
    assert shapes['backbone.features.0.weight'][0] == 4 - len(
        chosen['backbone.features.0'])
    # fc6 reads each conv5_3 channel at 2x2 pooled positions
    assert shapes['backbone.classifier.0.weight'] == (
        32 - len(chosen['backbone.classifier.0']), (32 - conv5) * 4)
    fc7 = len(chosen['backbone.classifier.3'])
    assert shapes['neck.fc.weight'] == (16 - len(chosen['neck.fc']), 32 - fc7)
    assert shapes['head.fc.weight'] == (31, 16 - len(chosen['neck.fc']))
    assert sum(s.numel() for s in shapes.values()) < sum(
        s.numel() for s in params.values())


# --- TCP ------------------------------------------------------------------


class _Group:
    name, num_channels = 'layer', 3


def test_tcp_scores_each_domain_normalised_and_keeps_the_weaker():
    tcp = CRITERIA.build(dict(type='TCP', decay=0.5))
    # per-sample Taylor terms (N, C): rows 0-1 source, rows 2-3 target; the
    # public code's |batch mean| (not the mean of |per sample|): opposite
    # signs within a domain cancel
    first = torch.tensor([[3., 0., 4.], [3., 0., -2.], [0., 1., 5.],
                          [0., 1., -5.]])
    tcp._accumulate(_Group, tcp.batch_score(first))
    tcp._accumulate(_Group, tcp.batch_score(torch.zeros(4, 3)))
    source = torch.tensor([3., 0., 1.]) * 0.5
    target = torch.tensor([0., 1., 0.]) * 0.5
    expected = torch.minimum(source / source.norm(), target / target.norm())
    torch.testing.assert_close(tcp(_Group), expected)
    assert tcp(_Group).tolist() == [0., 0., 0.]  # each weak in one domain
    with pytest.raises(ValueError, match='2 equal parts'):
        tcp.batch_score(torch.zeros(3, 3))


def test_tcp_is_computed_on_the_adaptation_loss(office_root):
    """The scores come from the training pass of the full loss: with the
    MMD weighted in, the target half scores differently than without."""

    def scores(mmd_weight):
        from mmengine.optim import OptimWrapper
        torch.manual_seed(0)
        model = build_tiny_model(
            mmd_weight=mmd_weight, lambda_ramp='constant')
        model.train()
        graph = ChannelGraph(model, torch.zeros(2, 3, 32, 32),
                             trace_forward(model), ['backbone', 'neck'])
        tcp = CRITERIA.build(dict(type='TCP'))
        tcp.attach(graph.groups())
        optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.))
        model.train_step(_batch(office_root), optim)
        tcp.commit(graph.groups())  # what the hook does before the step
        tcp.detach()
        return tcp.scores

    plain, adapted = scores(0.), scores(1.)
    assert set(plain) == set(adapted) and len(plain) == 16
    assert all(s.shape[0] == 2 for s in adapted.values())
    # without MMD the target images get no gradient at all
    assert all(s[1].abs().sum() == 0 for s in plain.values())
    assert all(s[1].abs().sum() > 0 for s in adapted.values())


# --- in the Runner, and tools/test.py -----------------------------------


@pytest.mark.parametrize('method', ['rpgp', 'tcp'])
def test_pruning_while_adapting_then_test_py_on_the_checkpoint(
        method, office_root, tmp_path):
    """RPGP/TCP shrink the backbone and the head inside the Runner;
    tools/test.py rebuilds the pruned model and reports target accuracy."""
    cfg = tiny_cfg(method, tmp_path, office_root, max_iters=6)
    cfg.custom_hooks[0].update(interval=2)
    if method == 'tcp':  # from the MMD model in the config; here a fresh one
        cfg.load_from = None
        cfg.custom_hooks[0].update(step_channels=8)
    cfg_file = str(tmp_path / f'{method}.py')
    cfg.dump(cfg_file)
    load_tool('train').main([cfg_file])

    ckpt_file = osp.join(str(tmp_path), 'iter_6.pth')
    ckpt = torch.load(ckpt_file, weights_only=False)
    assert ckpt['pruning']['finished']
    assert ckpt['pruning']['flops_ratio'] == pytest.approx(0.65, abs=0.04)
    shapes = {k: v.shape for k, v in ckpt['state_dict'].items()}
    convs = [
        v[0] for k, v in shapes.items()
        if k.startswith('backbone.features') and k.endswith('weight')
    ]
    assert sum(convs) < 4 + 4 + 8 + 8 + 16 * 3 + 32 * 6
    head = [
        shapes[f'{layer}.weight'][0] for layer in
        ('backbone.classifier.0', 'backbone.classifier.3', 'neck.fc')
    ]
    # RPGP cuts every layer alike; TCP only conv filters
    shrunk = [h < full for h, full in zip(head, (32, 32, 16))]
    assert all(shrunk) if method == 'rpgp' else not any(shrunk)
    assert shapes['head.fc.weight'] == (31, shapes['neck.fc.weight'][0])
    assert sum(s.numel() for s in shapes.values()) < sum(
        p.numel() for p in build_tiny_model().parameters())

    log = open(glob.glob(osp.join(str(tmp_path), '*', '*.log'))[0]).read()
    assert 'loss_mmd' in log
    assert ('neck.fc: ' in log) == (method == 'rpgp')  # pruned layers
    # iteratively, a few channels (TCP: step_channels) a step, not at once
    assert log.count('Pruning step ') >= 2
    assert ('8 weakest channels' in log) == (method == 'tcp')

    out = str(tmp_path / 'predictions.pkl')
    metrics = load_tool('test').main([
        cfg_file, ckpt_file, '--work-dir',
        str(tmp_path / 'test'), '--out', out
    ])
    assert set(metrics) == {'accuracy/top1', 'single-label/recall'}
    assert 0 <= metrics['single-label/recall'] <= 100
    # tools/test.py ran the pruned network with the trained weights: the
    # same scores as the checkpoint loaded strictly into a shrunk model
    model = MODELS.build(
        dict(cfg.model, data_preprocessor=cfg.data_preprocessor))
    restore_architecture(model, ckpt['architecture'])
    model.load_state_dict(ckpt['state_dict'])
    model.eval()
    webcam = DATASETS.build(cfg.test_dataloader.dataset)
    with torch.no_grad():
        expected = model.test_step(
            pseudo_collate([webcam[i] for i in range(len(webcam))]))
    dumped = mmengine.load(out)
    assert len(dumped) == len(expected) == 62
    for got, want in zip(dumped, expected):
        torch.testing.assert_close(got['pred_score'], want.pred_score)


def test_the_evaluators_give_top1_and_the_per_class_mean_accuracy():
    from mmengine.evaluator import Evaluator
    from mmpretrain.structures import DataSample
    cfg = Config.fromfile(
        config_path('domain_adaptation', 'vgg16_office31_w2a_mmd.py'))
    evaluator = Evaluator(cfg.test_evaluator)
    evaluator.dataset_meta = dict(classes=OFFICE31_CLASSES)
    # class 0: 3 of 4 right, class 1: 0 of 1, every other class 1 of 1
    labels = [0, 0, 0, 0, 1] + list(range(2, 31))
    preds = [0, 0, 0, 2, 0] + list(range(2, 31))
    samples = []
    for label, pred in zip(labels, preds):
        score = torch.zeros(31)
        score[pred] = 1.
        samples.append(
            DataSample().set_gt_label(label).set_pred_score(score).to_dict())
    evaluator.process(samples)
    metrics = evaluator.evaluate(len(samples))
    assert metrics['accuracy/top1'] == pytest.approx(100 * 32 / 34)
    assert metrics['single-label/recall'] == pytest.approx(
        100 * (0.75 + 0 + 29) / 31)


# --- configs --------------------------------------------------------------


@pytest.mark.parametrize('transfer', sorted(TRANSFERS))
def test_every_transfer_and_method_has_a_config(transfer):
    source, target = TRANSFERS[transfer]
    for method in METHODS:
        cfg = Config.fromfile(
            config_path('domain_adaptation',
                        f'vgg16_office31_{transfer}_{method}.py'))
        train = cfg.train_dataloader.dataset
        assert (train.source.domain, train.target.domain) == (source, target)
        assert cfg.val_dataloader.dataset.domain == target
        assert cfg.test_dataloader.dataset.domain == target
        # the real network: VGG-16 from ImageNet weights at 224x224
        assert cfg.model.backbone.get('widen_factor', 1.) == 1.
        assert cfg.model.backbone.init_cfg.type == 'Pretrained'
        assert dict(type='RandomCrop', crop_size=224) in train.source.pipeline
        assert (cfg.model.mmd_loss is None) == (method == 'source_only')
        # the pretrained-weights recipe: DAN's ramp from the first iteration
        assert cfg.model.get('warmup_iters', 0) == 0
        assert cfg.default_hooks.collapse_guard.type == 'CollapseGuardHook'
        hooks = cfg.get('custom_hooks', [])
        if method in ('rpgp', 'tcp'):
            (hook, ) = hooks
            assert hook.criterion.type == dict(
                rpgp='GradientNorm', tcp='TCP')[method]
            assert (hook.target, hook.target_ratio) == ('flops', 0.35)
        else:
            assert not hooks
        if method == 'rpgp':  # while adapting, from the first iteration
            assert hook.prunable == ['backbone', 'neck']
            assert cfg.load_from is None
        if method == 'tcp':  # TCP's code: conv filters of the adapted model,
            # a few at a time with fine-tuning in between
            assert hook.prunable == ['backbone.features']
            assert hook.step_channels > 0 and hook.interval > 0
            assert cfg.load_from == (f'work_dirs/vgg16_office31_{transfer}'
                                     '_mmd/iter_10000.pth')


def test_the_da_table_reports_mean_spread_flops_and_collapses():
    """tools/analysis/da_table.py's summary of runs (no training here)."""
    from test_tools_and_readme import load_tool
    da_table = load_tool('analysis/da_table')
    assert da_table.summary([50., 60., 70.]) == '60.0 ± 10.0 (50.0-70.0)'
    run = lambda top1, flops=100., collapsed=False: dict(  # noqa: E731
        top1=top1, flops=flops, collapsed=collapsed)
    results = {'a2d': {
        0: dict(mmd=run(80.), tcp=run(70., 65.), rpgp=dict(error='boom')),
        1: dict(mmd=run(90.), tcp=run(10., 65., collapsed=True),
                rpgp=run(60., 70.)),
    }}
    line = da_table.table(results, ('mmd', 'tcp', 'rpgp'), [0, 1])[-1]
    assert line == ('| a2d | 85.0 ± 7.1 (80.0-90.0) | 40.0 ± 42.4 '
                    '(10.0-70.0), 65% FLOPs, collapsed 1/2 | 60.0 ± 0.0 '
                    '(60.0-60.0), 70% FLOPs, failed 1 |')
