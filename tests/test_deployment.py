"""Deployment: a pruned checkpoint exported with BN folded to ONNX and
torch.export computes what the PyTorch model computes."""
import datetime
import json
import os.path as osp
import subprocess
import sys

import onnx
import pytest
import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.registry import DefaultScope

from conftest import ROOT, config_path
from models import CLASSIFIERS, build_classifier, graph_of, randomize_bn
from prunedet.apis import init_model
from prunedet.deploy import (ATOL, RTOL, ExportMismatchError, check_close,
                             count_batchnorms, export_model, fold_batchnorm,
                             ort_session, run_session)
from prunedet.engine.checkpoints import UntrustedCheckpointError
from prunedet.models.detectors import two_stage_forward
from prunedet.models.detectors.tracing import grid_rois
from prunedet.pruning.architecture import record_architecture
from prunedet.pruning.groups import ChannelGraph
from prunedet.pruning.surgery import remove_channels
from test_tools_and_readme import load_tool

DEMO_RPGP = config_path('demo', 'faster_rcnn_vgg16_shapes_rpgp.py')


def load(config, checkpoint, scope):
    """``init_model``, whose default scope then ends with the block (it sets
    mmengine's process-wide default scope, which would break the other
    tests' builds from another registry)."""
    with DefaultScope.overwrite_default_scope(scope):
        return init_model(config, checkpoint)


def prune(graph, fraction=0.4):
    """Remove a random ``fraction`` of every group's channels."""
    for name in [g.name for g in graph.groups()]:
        group = next(g for g in graph.groups() if g.name == name)
        n = group.num_channels
        remove_channels(graph, group,
                        torch.randperm(n)[:int(n * fraction)].tolist())


def save_pruned(model, path):
    """A checkpoint as the pruning hook writes it."""
    torch.save({'state_dict': model.state_dict(),
                'architecture': record_architecture(model)}, path)
    return path


def classifier_config(tmp_path, arch):
    path = tmp_path / f'{arch}.py'
    path.write_text(f'default_scope = "mmpretrain"\n'
                    f'model = dict(type="ImageClassifier", '
                    f'**{CLASSIFIERS[arch]!r})\n')
    return str(path)


def pruned_resnet20(tmp_path):
    model, x = build_classifier('resnet20')
    randomize_bn(model)
    prune(graph_of(model, x))
    ckpt = save_pruned(model, str(tmp_path / 'pruned.pth'))
    return classifier_config(tmp_path, 'resnet20'), ckpt, model


def onnx_ops(path):
    return {node.op_type for node in onnx.load(path).graph.node}


def onnx_conv_shapes(path):
    return sorted(tuple(i.dims) for i in onnx.load(path).graph.initializer
                  if len(i.dims) == 4)


def conv_shapes(model):
    return sorted(tuple(m.weight.shape) for m in model.modules()
                  if isinstance(m, nn.Conv2d))


@pytest.mark.parametrize('arch', ['vgg19', 'resnet20'])
def test_bn_folding_keeps_outputs_and_the_original(arch):
    model, x = build_classifier(arch)
    randomize_bn(model)
    prune(graph_of(model, x))
    model.eval()
    folded = fold_batchnorm(model)
    assert count_batchnorms(folded) == 0 < count_batchnorms(model)
    with torch.no_grad():
        expected = model(x, mode='tensor')
        got = folded(x, mode='tensor')
    assert check_close('folded', [got], [expected]) <= 1
    assert not torch.equal(got, expected)  # really another computation


class ActThenNorm(nn.Module):
    """conv -> ReLU -> BN, registered as conv, BN, ReLU: mmcv's folding
    pairs by registration, so it folds the BN across the ReLU."""

    def __init__(self):
        super().__init__()
        self.conv = ConvModule(3, 8, 3, norm_cfg=dict(type='BN'),
                               order=('conv', 'act', 'norm'))

    def forward(self, x, mode='tensor'):
        return self.conv(x).mean((2, 3))


def test_a_wrong_fold_is_caught_before_anything_is_written(tmp_path):
    model = ActThenNorm()
    randomize_bn(model)
    with pytest.raises(ExportMismatchError, match='model with BN folded'):
        export_model(model, (3, 16, 16), str(tmp_path))
    assert not osp.exists(tmp_path / 'model.onnx')


def test_pruned_classifier_exports_to_onnx_and_torch_export(tmp_path):
    config, ckpt, pruned = pruned_resnet20(tmp_path)
    model = load(config, ckpt, 'mmpretrain')
    info = export_model(model, (3, 32, 32), str(tmp_path / 'deploy'))
    assert info['batchnorms_folded'] == count_batchnorms(pruned) > 0
    assert info['batchnorms_left'] == 0
    assert {c['what'] for c in info['checks']} == {
        'BN folded (PyTorch)', 'ONNX (onnxruntime)', 'torch.export program'}
    assert json.load(open(tmp_path / 'deploy' / 'deploy.json')) == info
    # checked here again, on another batch size, against the model that
    # was pruned (not the one rebuilt from the checkpoint)
    x = torch.randn(5, 3, 32, 32)
    pruned.eval()
    with torch.no_grad():
        expected = pruned(x, mode='tensor')
    path = str(tmp_path / 'deploy' / 'model.onnx')
    (logits, ) = run_session(ort_session(path), x)
    assert check_close('onnx', [logits], [expected], ATOL, RTOL) <= 1
    program = torch.export.load(str(tmp_path / 'deploy' / 'model.pt2'))
    assert check_close('pt2', [program.module()(x)], [expected]) <= 1
    # the pruned network's convs, BN folded into them
    assert 'Conv' in onnx_ops(path)
    assert 'BatchNormalization' not in onnx_ops(path)
    assert onnx_conv_shapes(path) == conv_shapes(pruned)


def test_pruned_demo_detector_exports_and_matches(tmp_path):
    """Backbone + RPN head and RoIAlign + bbox head as ONNX, checked against
    mmdet's PyTorch detector (mmcv's RoIAlign kernel); the post-processing
    left in PyTorch finds what mmdet's predict finds."""
    from mmdet.registry import MODELS

    from prunedet.utils.config import load_config
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(load_config(DEMO_RPGP).model)
    randomize_bn(model)
    model.eval()
    x = torch.randn(1, 3, 128, 128)
    prune(ChannelGraph(model, x, two_stage_forward, ['backbone']), 0.3)
    ckpt = save_pruned(model, str(tmp_path / 'det.pth'))
    loaded = load(DEMO_RPGP, ckpt, 'mmdet')
    conv5_3 = loaded.backbone.features[40].out_channels
    assert conv5_3 == model.backbone.features[40].out_channels < 128
    out = str(tmp_path / 'deploy')
    info = export_model(loaded, (3, 128, 128), out, formats=['onnx'])
    assert info['task'] == 'detection' and info['batchnorms_left'] == 0
    post = info['checks'][-1]
    assert post['what'] == 'post-processing = mmdet predict'
    assert post['boxes'] > 100 and post['onnx_found'] >= 0.8
    # checked here again against the pruned model itself
    images = torch.randn(2, 3, 160, 128)  # another size: dynamic H, W
    with torch.no_grad():
        feats = model.extract_feat(images)
        rpn_cls, rpn_reg = model.rpn_head(feats)
        rois = grid_rois(50, 2, 160, 128, 'cpu')
        bbox = model.roi_head._bbox_forward(feats, rois)
    assert onnx_conv_shapes(osp.join(out, 'features.onnx')) == conv_shapes(
        nn.ModuleList([model.backbone, model.rpn_head]))
    features = ort_session(osp.join(out, 'features.onnx'))
    got = run_session(features, images)
    assert got[0].shape[1] == conv5_3
    assert check_close('features', got,
                       [feats[0], rpn_cls[0], rpn_reg[0]]) <= 1
    roi_head = ort_session(osp.join(out, 'roi_head.onnx'))
    got = run_session(roi_head, feats[0], rois)
    assert check_close('roi head', got,
                       [bbox['cls_score'], bbox['bbox_pred']]) <= 1
    assert 'RoiAlign' in onnx_ops(osp.join(out, 'roi_head.onnx'))


def test_export_tool_names_what_does_not_fit(tmp_path):
    config, ckpt, _ = pruned_resnet20(tmp_path)
    tool = load_tool('deployment/export')
    with pytest.raises(FileNotFoundError, match='nothing.py'):
        tool.main([str(tmp_path / 'nothing.py'), ckpt])
    vgg = classifier_config(tmp_path, 'vgg19')
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        with pytest.raises(ValueError, match='pruned.pth does not fit'):
            tool.main([vgg, ckpt, '--shape', '3', '32', '32'])
        with pytest.raises(ValueError, match='give --shape'):
            tool.main([config, ckpt])


def test_export_help_answers_without_importing_torch():
    code = ('import runpy, sys\n'
            'sys.argv = ["export.py", "--help"]\n'
            'try:\n'
            '    runpy.run_path("tools/deployment/export.py", '
            'run_name="__main__")\n'
            'except SystemExit:\n'
            '    pass\n'
            'print("torch" in sys.modules)')
    out = subprocess.run([sys.executable, '-c', code], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    assert 'usage: export.py' in out and out.strip().endswith('False')


def test_a_shipped_classifier_config_exports_and_trusts_its_list(tmp_path):
    """mmpretrain's configs keep ``data_preprocessor`` at the top level
    (export.py failed on every classifier config with ``'dict' object has
    no attribute 'to_dict'``); a checkpoint the config's
    ``trusted_checkpoints`` names loads fully, as in the Runner."""
    config = config_path('classification', 'lenet5_mnist_rpgp.py')
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = init_model(config)
    x = torch.randn(2, 1, 32, 32)
    prune(graph_of(model, x), 0.3)
    ckpt = str(tmp_path / 'pruned.pth')
    # a global outside the allowlist: loads only when trusted
    torch.save({'state_dict': model.state_dict(),
                'architecture': record_architecture(model),
                'meta': {'made': datetime.date(2026, 1, 1)}}, ckpt)
    tool = load_tool('deployment/export')
    args = ['--shape', '1', '32', '32', '--formats', 'onnx']
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        with pytest.raises(UntrustedCheckpointError,
                           match='trusted_checkpoints'):
            tool.main([config, ckpt, *args])
        trusting = tmp_path / 'trusting.py'
        trusting.write_text(f'_base_ = [{config!r}]\n'
                            f'trusted_checkpoints = [{ckpt!r}]\n')
        info = tool.main([str(trusting), ckpt, *args])
    assert info['data_preprocessor'] == dict(
        type='ClsDataPreprocessor', num_classes=10, mean=[33.46],
        std=[78.87], batch_augments=None)
    assert onnx_conv_shapes(str(tmp_path / 'deploy' / 'model.onnx')) == \
        conv_shapes(model) != conv_shapes(init_model(config))
