"""OpenMMLab's own models, pruned as a user would prune them.

Each model is built from its own config file (through the ``mmdet::`` /
``mmpretrain::`` scopes), tiny in input size. For each: the FLOPs target is
planned, the channels chosen are masked to zero (weights, biases and norm
parameters) and the masked model's outputs are recorded, the channels are
removed with their optimizer state, and then the pruned model must give the
same outputs, keep every channel-count attribute equal to its weights, be
rebuilt from the config and its architecture record as a checkpoint would,
train, and measure within 2 points of the FLOPs target. A target the prunable
layers cannot reach must be refused before anything is cut.
"""
import time
from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.registry import DefaultScope

import prunedet.models.detectors  # noqa: F401  (two-stage tracing)
from models import randomize_bn
from prunedet.criteria import L1Norm
from prunedet.pruning.architecture import (record_architecture,
                                           restore_architecture)
from prunedet.pruning.flops import FlopsEstimate, measure_flops
from prunedet.pruning.groups import ChannelGraph
from prunedet.pruning.pruner import ChannelPruner, UnreachableTargetError
from prunedet.pruning.soft import mask_channels
from prunedet.pruning.surgery import remove_channels
from prunedet.pruning.tracing import flat_tensors, trace_forward


@dataclass
class Case:
    config: str
    prunable: Sequence[str]
    size: int
    ratio: float = 0.4
    options: Dict = field(default_factory=dict)
    unreachable: bool = False  # the target must be refused
    batch: int = 2

    @property
    def scope(self) -> str:
        return self.config.split('::')[0]


MMPRE, MMDET = 'mmpretrain::', 'mmdet::'
CASES = {
    # the rows of issue 13
    'mobilenet-v2': Case(MMPRE + 'mobilenet_v2/mobilenet-v2_8xb32_in1k.py',
                         ['backbone'], 32),
    'resnet50': Case(MMPRE + 'resnet/resnet50_8xb32_in1k.py', ['backbone'],
                     32),
    'efficientnet-b0': Case(
        MMPRE + 'efficientnet/efficientnet-b0_8xb32_in1k.py', ['backbone'],
        32),
    'shufflenet-v2': Case(
        MMPRE + 'shufflenet_v2/shufflenet-v2-1x_16xb64_in1k.py',
        ['backbone'], 64),
    'retinanet-voc': Case(MMDET + 'pascal_voc/retinanet_r50_fpn_1x_voc0712.py',
                          ['backbone'], 64, 0.3),
    # the RoI head holds most of the FLOPs at 1000 proposals: refused
    'faster-rcnn-voc-backbone': Case(
        MMDET + 'pascal_voc/faster-rcnn_r50_fpn_1x_voc0712.py',
        ['backbone'], 64, 0.3, unreachable=True),
    'faster-rcnn-voc-backbone-neck': Case(
        MMDET + 'pascal_voc/faster-rcnn_r50_fpn_1x_voc0712.py',
        ['backbone', 'neck'], 64, 0.3,
        {'model.test_cfg.rpn.max_per_img': 100}),
    'ssd300-voc': Case(MMDET + 'pascal_voc/ssd300_voc0712.py', ['backbone'],
                       300, 0.3, batch=1),
    # more: a one-stage detector with GroupNorm heads and Scale, a
    # two-stage one with a mask head, a concat-heavy (CSP) backbone
    'fcos': Case(MMDET + 'fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py',
                 ['backbone', 'neck', 'bbox_head'], 64, 0.3),
    'mask-rcnn': Case(MMDET + 'mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
                      ['backbone', 'neck', 'roi_head'], 64, 0.3,
                      {'model.test_cfg.rpn.max_per_img': 50}),
    'rtmdet-tiny': Case(MMDET + 'rtmdet/rtmdet_tiny_8xb32-300e_coco.py',
                        ['backbone', 'neck'], 64, 0.3),
}


def _no_pretrained(node) -> None:
    """Nothing may be downloaded: drop ``init_cfg``s naming weights."""
    if isinstance(node, dict):
        init = node.get('init_cfg')
        if isinstance(init, dict) and init.get('type') == 'Pretrained':
            node['init_cfg'] = None
        for value in node.values():
            _no_pretrained(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _no_pretrained(value)


def build(case: Case, tmp_path) -> nn.Module:
    """The config's model, from the package's own config file."""
    path = tmp_path / 'config.py'
    path.write_text(f'_base_ = {case.config!r}\n')
    cfg = Config.fromfile(str(path))
    cfg.merge_from_dict(case.options)
    _no_pretrained(cfg.model)
    with DefaultScope.overwrite_default_scope(case.scope):
        if case.scope == 'mmdet':
            from mmdet.registry import MODELS
        else:
            from mmpretrain.registry import MODELS
        model = MODELS.build(cfg.model)
    # as the Runner does: some parameters (SSD's L2Norm scale) are left
    # uninitialised memory until init_weights()
    model.init_weights()
    randomize_bn(model)
    return model


def samples(case: Case, model: nn.Module, x: torch.Tensor):
    """Labelled data samples for one training step."""
    n, _, h, w = x.shape
    if case.scope == 'mmpretrain':
        from mmpretrain.structures import DataSample
        return [DataSample().set_gt_label(i % 10) for i in range(n)]
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData
    out = []
    for i in range(n):
        sample = DetDataSample(metainfo=dict(
            img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w),
            batch_input_shape=(h, w), scale_factor=(1., 1.)))
        boxes = torch.tensor([[8., 8., w / 2, h / 2],
                              [w / 3, h / 4, w - 4., h - 8.]])
        masks = torch.zeros(2, h, w, dtype=torch.uint8)
        for k, (x1, y1, x2, y2) in enumerate(boxes.int().tolist()):
            masks[k, y1:y2, x1:x2] = 1
        sample.gt_instances = InstanceData(
            bboxes=boxes, labels=torch.tensor([i % 3, 1]))
        if getattr(getattr(model, 'roi_head', None), 'with_mask', False):
            sample.gt_instances.masks = BitmapMasks(masks.numpy(), h, w)
        out.append(sample)
    return out


def train_step(model, x, data, optimizer, before_step=None) -> float:
    """One step; ``before_step()`` runs right before the optimizer step
    (where the hook commits a criterion's statistics)."""
    model.train()
    optimizer.zero_grad()
    losses = model(x, data, mode='loss')
    loss = sum(t.sum() for k, v in losses.items() if 'loss' in k
               for t in flat_tensors(v))
    loss.backward()
    # random weights give some heads (SSD) huge losses: a bounded step
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.)
    if before_step is not None:
        before_step()
    optimizer.step()
    return loss.item()


def weakest(scores: torch.Tensor, drop: int) -> torch.Tensor:
    return torch.sort(scores, stable=True).indices[:drop].sort().values


def observe(forward, model, x):
    """The model's outputs (eval mode), and ``module.attr`` -> value for
    the channel-count attributes equal to the channels of a tensor the
    module reads or writes, or to a width of one of its own layers."""
    from prunedet.pruning.mirrors import channel_attributes
    found = {}

    def check(name):

        def hook(module, args, output):
            widths = {t.shape[1] for t in flat_tensors((args, output))
                      if t.dim() >= 2}
            for layer in module.modules():  # its own layers' widths
                if isinstance(layer, (nn.modules.conv._ConvNd, nn.Linear)):
                    widths.update(layer.weight.shape[:2])
            for attr, value in channel_attributes(module).items():
                if isinstance(value, int) and value in widths:
                    found[f'{name}.{attr}'] = value

        return hook

    handles = [m.register_forward_hook(check(n))
               for n, m in model.named_modules()]
    model.eval()
    try:
        with torch.no_grad():
            out = [t.clone() for t in flat_tensors(forward(model, x))]
    finally:
        for h in handles:
            h.remove()
    return out, found


def prune_and_check(case: Case, tmp_path) -> Optional[dict]:
    start = time.time()
    torch.manual_seed(0)
    model = build(case, tmp_path)
    x = torch.randn(case.batch, 3, case.size, case.size)
    forward = trace_forward(model)
    graph = ChannelGraph(model, x, forward, case.prunable)
    total, per_layer = measure_flops(model, x[:1], forward)
    pruner = ChannelPruner(
        graph, L1Norm(), target='flops',
        flops=FlopsEstimate(total, per_layer, graph.groups()))
    if case.unreachable:
        with pytest.raises(UnreachableTargetError,
                           match=r'prunable layers hold .*deepest cut'):
            pruner.check(case.ratio)
        return None
    pruner.check(case.ratio)
    data = samples(case, model, x)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    train_step(model, x, data, optimizer)  # momentum to cut
    keep = pruner.plan(case.ratio, pruner.scores())
    chosen = {
        g.name: weakest(L1Norm()(g), g.num_channels - keep[g.name])
        for g in graph.groups()
    }
    for g in graph.groups():
        mask_channels(g, chosen[g.name])
    masked, agreed = observe(forward, model, x)
    for group in graph.groups():  # one group's removal leaves the others'
        if len(chosen[group.name]):  # channel numbers as they are
            remove_channels(graph, group, chosen[group.name].tolist(),
                            [optimizer])
    pruned, after = observe(forward, model, x)
    assert len(pruned) == len(masked)
    error = max((a - b).abs().max().item() for a, b in zip(pruned, masked))
    scale = max(a.abs().max().item() for a in masked)
    assert error <= 1e-4 * scale + 1e-5, (error, scale)
    # what agreed with the tensors before agrees after (now other values)
    assert set(agreed) <= set(after), sorted(set(agreed) - set(after))[:5]
    # a checkpoint rebuilds it: the config's model, shrunk to the record
    rebuilt = build(case, tmp_path)
    restore_architecture(rebuilt, record_architecture(model))
    rebuilt.load_state_dict(model.state_dict())  # strict
    again, _ = observe(forward, rebuilt, x)
    assert all(torch.equal(a, b) for a, b in zip(again, pruned))
    loss = train_step(model, x, data, optimizer)
    assert torch.isfinite(torch.tensor(loss))
    measured, _ = measure_flops(model, x[:1], forward)
    assert abs(measured / total - (1 - case.ratio)) <= 0.02, measured / total
    return dict(flops=measured / total, error=error, scale=scale,
                seconds=time.time() - start, groups=len(graph.roots),
                kept=len(graph.unprunable))


@pytest.mark.parametrize('name', list(CASES))
def test_openmmlab_config_prunes_like_its_masked_model(name, tmp_path):
    result = prune_and_check(CASES[name], tmp_path)
    print(name, result)
