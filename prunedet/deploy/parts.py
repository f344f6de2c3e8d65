"""The exportable parts of a model, as plain tensor-in, tensor-out modules.

A classifier is exported whole (image -> logits). A two-stage detector is
not: turning RPN outputs into proposals (anchors, box decoding, top-k and
NMS) and turning RoI-head outputs into detections (decoding, per-class NMS)
have data-dependent shapes, and mmcv's NMS is a compiled extension that
neither ``torch.export`` nor ONNX can trace. Those steps stay in PyTorch
(mmdet's own ``predict_by_feat``, see :mod:`prunedet.deploy.runtime`) and
the network itself is exported in two parts:

* ``features``: image -> (feature map, RPN class scores, RPN box deltas):
  the pruned backbone, the neck if any, and the RPN head;
* ``roi_head``: (feature map, RoIs) -> (class scores, box deltas): RoIAlign
  and the bbox head. mmcv's RoIAlign kernel does not export either; its
  torchvision implementation (mmcv's own ``use_torchvision`` switch, the
  same algorithm) becomes ONNX's ``RoiAlign``, and the export is checked
  against mmcv's kernel.

Inputs are what the model's data preprocessor outputs (normalised, padded
NCHW float); the preprocessor settings are written beside the exported files.
"""
import copy
from typing import Dict, Sequence

import torch
import torch.nn as nn
from mmdet.models.detectors import TwoStageDetector
from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor

from prunedet.models.detectors.tracing import grid_rois


class ClassifierLogits(nn.Module):
    """image -> class logits (before softmax), mmpretrain's tensor mode."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.model(inputs, mode='tensor')


class DetectorFeatures(nn.Module):
    """image -> (feature map, RPN class scores, RPN box deltas)."""

    def __init__(self, model: TwoStageDetector):
        super().__init__()
        self.backbone = model.backbone
        self.neck = model.neck if model.with_neck else None
        self.rpn_head = model.rpn_head

    def forward(self, inputs: torch.Tensor):
        feats = self.backbone(inputs)
        if self.neck is not None:
            feats = self.neck(feats)
        cls_scores, bbox_preds = self.rpn_head(feats)
        return feats[0], cls_scores[0], bbox_preds[0]


class DetectorRoIHead(nn.Module):
    """(feature map, RoIs ``(batch index, x1, y1, x2, y2)``) -> (class
    scores, box deltas).

    Args:
        torchvision_roi_align: RoIAlign by torchvision (exportable) instead
            of mmcv's kernel (the reference the export is checked against).
    """

    def __init__(self, model: TwoStageDetector,
                 torchvision_roi_align: bool = True):
        super().__init__()
        extractor = model.roi_head.bbox_roi_extractor
        self.roi_layer = extractor.roi_layers[0]
        if torchvision_roi_align and hasattr(self.roi_layer,
                                             'use_torchvision'):
            self.roi_layer = copy.copy(self.roi_layer)
            self.roi_layer.use_torchvision = True
        self.bbox_head = model.roi_head.bbox_head

    def forward(self, feature: torch.Tensor, rois: torch.Tensor):
        cls_score, bbox_pred = self.bbox_head(self.roi_layer(feature, rois))
        return cls_score, bbox_pred


def _check_detector(model: TwoStageDetector) -> None:
    roi_head = getattr(model, 'roi_head', None)
    extractor = getattr(roi_head, 'bbox_roi_extractor', None)
    if not isinstance(extractor, SingleRoIExtractor) or len(
            extractor.featmap_strides) != 1 or getattr(
                roi_head, 'with_mask', False):
        raise ValueError(
            'prunedet exports two-stage detectors with one feature level '
            '(no FPN), a SingleRoIExtractor and a bbox head only, as Faster '
            f'R-CNN VGG16; this {type(model).__name__} has '
            f'{type(roi_head).__name__} with {type(extractor).__name__}')


def is_detector(model: nn.Module) -> bool:
    return isinstance(model, TwoStageDetector)


def num_test_rois(model: TwoStageDetector) -> int:
    """Proposals per image at test time (as FLOPs are counted)."""
    rpn_cfg = (model.test_cfg or {}).get('rpn') or {}
    return rpn_cfg.get('max_per_img', 300)


def exportable_parts(model: nn.Module, torchvision_roi_align: bool = True
                     ) -> Dict[str, nn.Module]:
    """``{'model': ...}`` for a classifier, ``{'features': ...,
    'roi_head': ...}`` for a two-stage detector; they share ``model``'s
    layers."""
    model.eval()
    if not is_detector(model):
        return {'model': ClassifierLogits(model)}
    _check_detector(model)
    return {
        'features': DetectorFeatures(model),
        'roi_head': DetectorRoIHead(model, torchvision_roi_align),
    }


def example_inputs(parts: Dict[str, nn.Module], shape: Sequence[int],
                   batch: int = 2, num_rois: int = 300) -> Dict[str, tuple]:
    """Random inputs for each part: ``batch`` images of ``shape`` (C, H,
    W); for the RoI head their feature maps and ``num_rois`` boxes per
    image."""
    images = torch.randn(batch, *shape)
    if 'model' in parts:
        return {'model': (images, )}
    with torch.no_grad():
        feature = parts['features'](images)[0]
    rois = grid_rois(num_rois, batch, shape[1], shape[2], 'cpu')
    return {'features': (images, ), 'roi_head': (feature, rois)}


def dynamic_shapes(name: str) -> tuple:
    """Batch, height, width (and the number of RoIs) stay free in the
    export (examples with batch 2, so that it is not specialised to 1)."""
    dim = torch.export.Dim
    if name == 'roi_head':
        return ({0: dim('feature_batch', min=1, max=1024),
                 2: dim('feature_height', min=2, max=1024),
                 3: dim('feature_width', min=2, max=1024)},
                {0: dim('rois', min=1, max=100000)})
    image = {0: dim('batch', min=1, max=1024)}
    if name == 'features':
        image.update({2: dim('height', min=32, max=8192),
                      3: dim('width', min=32, max=8192)})
    return (image, )


INPUT_NAMES = {
    'model': ['inputs'],
    'features': ['inputs'],
    'roi_head': ['feature', 'rois'],
}
OUTPUT_NAMES = {
    'model': ['logits'],
    'features': ['feature', 'rpn_cls_score', 'rpn_bbox_pred'],
    'roi_head': ['cls_score', 'bbox_pred'],
}
