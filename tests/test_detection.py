"""Faster R-CNN VGG16: build, train, predict, prune, evaluate, reload."""
import os
import os.path as osp
import shutil

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.registry import DefaultScope

from conftest import config_path
from prunedet.pruning.soft import mask_channels
from prunedet.datasets.synthetic_voc import write_shapes_voc
from prunedet.models.detectors import two_stage_forward
from prunedet.pruning.groups import ChannelGraph
from prunedet.pruning.surgery import remove_channels
from prunedet.utils.config import load_config
from runner_utils import build_runner
from test_tools_and_readme import load_tool

DEMO_RPGP = config_path('demo', 'faster_rcnn_vgg16_shapes_rpgp.py')


def build_detector(config):
    with DefaultScope.overwrite_default_scope('mmdet'):
        return MODELS.build(load_config(config).model)


@pytest.fixture(scope='module')
def shapes_root(tmp_path_factory):
    return write_shapes_voc(
        str(tmp_path_factory.mktemp('shapes')), 16, 6, size=(128, 128))


def demo_cfg(work_dir, data_root, max_iters=8):
    cfg = load_config(DEMO_RPGP, work_dir=str(work_dir), data_root=data_root)
    cfg.merge_from_dict({
        'train_cfg.max_iters': max_iters,
        'train_cfg.val_interval': max_iters,
        'default_hooks.checkpoint.interval': max_iters,
        'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False,
        'val_dataloader.num_workers': 0,
        'val_dataloader.persistent_workers': False,
        'test_dataloader.num_workers': 0,
        'test_dataloader.persistent_workers': False,
        'custom_hooks.0.interval': 3,
        'custom_hooks.0.input_shape': (3, 128, 128),
        'experiment_name': f'det_{id(work_dir)}',
    })
    return cfg


def test_rpgp_trains_evaluates_and_the_checkpoint_tests_alone(
        tmp_path, shapes_root):
    runner = build_runner(demo_cfg(tmp_path, shapes_root))
    runner.train()
    val = runner.message_hub.get_scalar('val/pascal_voc/mAP').current()
    ckpt = osp.join(str(tmp_path), 'iter_8.pth')
    state = torch.load(ckpt, weights_only=True)
    conv5_3 = state['state_dict']['backbone.features.40.weight'].shape[0]
    assert conv5_3 < 128 and state['pruning']['finished']
    metrics = load_tool('test').main([
        DEMO_RPGP, ckpt, '--data-root', shapes_root, '--work-dir',
        str(tmp_path / 'test'), '--cfg-options',
        'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False'
    ])
    assert metrics['pascal_voc/mAP'] == pytest.approx(val, abs=1e-4)
    report, plot = load_tool('analysis/pruning_report').main([str(tmp_path)])
    line = next(row for row in report.splitlines()
                if row.startswith('backbone.features.40 '))
    assert line.split()[1:3] == [str(conv5_3), '128']
    assert 'FLOPs' in report and osp.getsize(plot) > 10000


def test_hard_prune_of_the_backbone_follows_into_the_heads(shapes_root):
    model = build_detector(DEMO_RPGP)
    model.eval()
    x = torch.randn(1, 3, 128, 128)
    graph = ChannelGraph(model, x, two_stage_forward, ['backbone'])
    groups = graph.groups()
    assert len(groups) == 13  # conv1_1 ... conv5_3
    chosen = {}
    for group in groups:
        chosen[group.name] = torch.randperm(group.num_channels)[:group.num_channels // 3]
        mask_channels(group, chosen[group.name])
    with torch.no_grad():
        soft = two_stage_forward(model, x)
    for name, channels in chosen.items():
        group = next(g for g in graph.groups() if g.name == name)
        remove_channels(graph, group, channels.tolist())
    with torch.no_grad():
        hard = two_stage_forward(model, x)
    for a, b in zip(soft, hard):
        torch.testing.assert_close(b, a, atol=1e-4, rtol=1e-4)
    conv5_3 = model.backbone.features[40]
    kept = 128 - len(chosen['backbone.features.40'])
    assert conv5_3.out_channels == kept
    assert model.rpn_head.rpn_conv.in_channels == kept
    assert model.roi_head.bbox_head.shared_fcs[0].in_features == kept * 49
    # predict still runs end to end on the pruned detector
    from mmdet.structures import DetDataSample
    sample = DetDataSample(metainfo=dict(
        img_shape=(128, 128), ori_shape=(128, 128), scale_factor=(1., 1.)))
    with torch.no_grad():
        (result, ) = model.predict(x, [sample])
    assert result.pred_instances.bboxes.shape[1] == 4


def test_missing_annotations_are_named_before_training(tmp_path,
                                                       shapes_root):
    broken = str(tmp_path / 'broken')
    shutil.copytree(shapes_root, broken)
    os.remove(osp.join(broken, 'VOC2007', 'Annotations', '000003.xml'))
    runner = build_runner(demo_cfg(tmp_path / 'work', broken))
    with pytest.raises(FileNotFoundError, match=r"000003"):
        runner.train()
    assert not os.path.exists(str(tmp_path / 'work' / 'iter_8.pth'))


def test_imagenet_vgg16_weights_load_into_the_detector(tmp_path):
    import torchvision
    from mmengine.runner import load_checkpoint
    src = str(tmp_path / 'vgg16.pth')
    vgg = torchvision.models.vgg16(weights=None)
    torch.save(vgg.state_dict(), src)
    voc = config_path('faster_rcnn_vgg16_voc.py')
    # the backbone alone, by torchvision key names, through init_cfg
    from prunedet.models.backbones import VGG16
    backbone = VGG16(init_cfg=dict(type='Pretrained', checkpoint=src))
    backbone.init_weights()
    torch.testing.assert_close(backbone.features[28].weight,
                               vgg.features[28].weight)  # conv5_3
    # fc6/fc7 too, through the converter
    dst = str(tmp_path / 'frcnn.pth')
    load_tool('model_converters/vgg16_to_faster_rcnn').main([src, dst])
    from prunedet.engine.checkpoints import load_file, use_safe_loaders
    assert 'state_dict' in load_file(dst)  # plain data: no flag needed
    use_safe_loaders()  # as the tools do
    fresh = build_detector(voc)
    load_checkpoint(fresh, dst, strict=False)
    torch.testing.assert_close(fresh.roi_head.bbox_head.shared_fcs[0].weight,
                               vgg.classifier[0].weight)
    torch.testing.assert_close(fresh.backbone.features[0].bias,
                               vgg.features[0].bias)
