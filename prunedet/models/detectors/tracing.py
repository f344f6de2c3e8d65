"""Tracing a two-stage detector for channel coupling and FLOPs.

In ``mode='tensor'`` mmdet's two-stage detectors return only the RoI head's
outputs and pick proposals by NMS, so the RPN would look unconnected to the
backbone. This forward runs every head on the features: the RPN, and the RoI
head on a fixed set of boxes, as many per image as the test-time proposals
(``test_cfg.rpn.max_per_img``), so the FLOPs are those of inference.
"""
import torch
from mmdet.models.detectors import TwoStageDetector

from prunedet.pruning.tracing import register_trace_forward


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
    bbox = model.roi_head._bbox_forward(x, rois)
    return (*cls_scores, *bbox_preds, bbox['cls_score'], bbox['bbox_pred'])
