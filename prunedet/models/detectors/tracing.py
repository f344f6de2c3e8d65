"""Tracing a two-stage detector for channel coupling and FLOPs.

In ``mode='tensor'`` mmdet's two-stage detectors pick proposals by NMS, which
is not differentiable, so the RPN would look unconnected to the backbone.
This forward runs every head on the features: the RPN, and the RoI head's
own ``forward`` (its bbox head, and its mask head if it has one: each reads
the features, so each must follow their channels) on a fixed set of boxes,
as many per image as the test-time proposals (``test_cfg.rpn.max_per_img``),
so that the FLOPs are those of inference.
"""
import torch
from mmdet.models.detectors import TwoStageDetector
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData

from prunedet.pruning.tracing import flat_tensors, register_trace_forward


def grid_rois(num: int, batch: int, height: int, width: int,
              device) -> torch.Tensor:
    """``num`` boxes per image on a grid, in mmdet's ``(batch_idx, x1, y1,
    x2, y2)`` RoI format."""
    side = int(num**0.5) + 1
    k = torch.arange(num, device=device, dtype=torch.float32)
    cx = (k % side + 0.5) * width / side
    cy = (k // side % side + 0.5) * height / side
    half_w, half_h = width / 4, height / 4
    boxes = torch.stack([(cx - half_w).clamp(min=0), (cy - half_h).clamp(min=0),
                         (cx + half_w).clamp(max=width),
                         (cy + half_h).clamp(max=height)], 1)
    idx = torch.arange(batch, device=device).repeat_interleave(num)
    return torch.cat([idx[:, None].float(), boxes.repeat(batch, 1)], 1)


@register_trace_forward(TwoStageDetector)
def two_stage_forward(model: TwoStageDetector, inputs: torch.Tensor):
    x = model.extract_feat(inputs)
    cls_scores, bbox_preds = model.rpn_head(x)
    num = model.test_cfg.rpn.get('max_per_img', 300) if model.test_cfg \
        else 300
    n, _, h, w = inputs.shape
    rois = grid_rois(num, n, h, w, inputs.device)
    proposals = [InstanceData(bboxes=rois[rois[:, 0] == i, 1:])
                 for i in range(n)]
    samples = [DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                                           scale_factor=(1., 1.)))
               for _ in range(n)]
    heads = model.roi_head.forward(x, proposals, samples)
    return (*cls_scores, *bbox_preds, *flat_tensors(heads))
