"""Every shipped config builds: its datasets on generated data, its custom
hooks, and its model (each distinct model once). The settings and the
generated data are those of ``tools/analysis/config_matrix.py``, which runs
the whole tool chain over every config (not in the suite)."""
import pytest
from mmengine.registry import DATASETS, HOOKS, MODELS, DefaultScope

from test_tools_and_readme import load_tool

matrix = load_tool('analysis/config_matrix')
CONFIGS = matrix.shipped_configs()
_built = set()


@pytest.fixture(scope='module')
def tiny_data(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('matrix_data'))
    return lambda kind: matrix.write_tiny_data(root, kind)


def test_every_config_is_in_the_matrix():
    assert len(CONFIGS) > 100
    assert not [c for c in CONFIGS if '_base_' in c]
    # a stage that loads another config's result runs after it
    order = matrix.dependency_order(CONFIGS)
    assert sorted(order) == CONFIGS
    for stage, previous in (('gal/lenet5_mnist_gal-0.01_finetune.py',
                             'gal/lenet5_mnist_gal-0.01.py'),
                            ('gal/lenet5_mnist_gal-0.01.py',
                             'gal/lenet5_mnist_gal_baseline.py'),
                            ('dcp/vgg19_cifar10_dcp_stage3.py',
                             'dcp/vgg19_cifar10_dcp_stage2.py')):
        assert matrix.upstream(stage, CONFIGS) == previous
        assert order.index(previous) < order.index(stage)
    assert matrix.evaluated_with('dcp/vgg19_cifar10_dcp_stage2.py',
                                 CONFIGS) == 'dcp/vgg19_cifar10_dcp_stage3.py'


def build_once(registry, cfg, check=None):
    """Build ``cfg`` unless an identical one was built before (many
    configs share their datasets, hooks and models)."""
    key = (registry.name, repr(cfg))
    if key not in _built:
        built = registry.build(cfg)
        if check is not None:
            check(built)
        _built.add(key)


def _not_empty(dataset):
    assert len(dataset) > 0
    assert dataset[0]['inputs'] is not None


@pytest.mark.parametrize('config', CONFIGS)
def test_config_builds_on_generated_data(config, tiny_data, tmp_path):
    kind = matrix.data_kind(matrix.read_config(config))
    cfg = matrix.tiny_config(config, tiny_data(kind), str(tmp_path))
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        for split in ('train', 'val', 'test'):
            build_once(DATASETS, cfg[f'{split}_dataloader'].dataset,
                       _not_empty)
        for hook in cfg.get('custom_hooks') or []:
            build_once(HOOKS, hook)
        model = dict(cfg.model)
        if cfg.get('data_preprocessor'):
            model.setdefault('data_preprocessor', cfg.data_preprocessor)
        build_once(MODELS, model)


PINNED = [c for c in CONFIGS if any(
    h.get('layer_ratios') for h in
    matrix.read_config(c).get('custom_hooks') or [])]


@pytest.mark.parametrize('config', PINNED)
def test_layer_ratios_name_layers_of_the_configs_model(config):
    """A config that pins a layer's share names a layer its model has, in
    a group the hook can cut (checked when training starts; here without
    training); a detector's pin is conv5_3's."""
    import torch
    from prunedet.criteria import L1Norm
    from prunedet.pruning.groups import ChannelGraph
    from prunedet.pruning.pruner import ChannelPruner
    from prunedet.pruning.tracing import trace_forward
    cfg = matrix.read_config(config)
    hook = cfg.custom_hooks[0]
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MODELS.build(cfg.model)
    graph = ChannelGraph(model, torch.randn(2, 3, 96, 96),
                         trace_forward(model),
                         hook.get('prunable', ['backbone']))
    pruner = ChannelPruner(graph, L1Norm(), layer_ratios=hook.layer_ratios,
                           final_ratio=hook.target_ratio)
    assert set(pruner._layer_shares.values()) == set(
        hook.layer_ratios.values())
    if 'faster_rcnn_vgg16' in config:  # the share is conv5_3's: the last
        convs = [n for n, m in model.backbone.named_modules()  # conv
                 if isinstance(m, torch.nn.Conv2d)]
        assert list(hook.layer_ratios) == [f'backbone.{convs[-1]}']


def test_the_rpgp_detection_configs_pin_conv5_3():
    assert {'faster_rcnn_vgg16_voc_rpgp.py', 'faster_rcnn_vgg16_voc07_rpgp.py',
            'demo/faster_rcnn_vgg16_shapes_rpgp.py'} <= set(PINNED)
