"""Run an exported model without prunedet: onnxruntime for the network,
mmdet for a detector's post-processing.

This module imports nothing from prunedet, so it can be copied next to an
application. A classifier's ``model.onnx`` needs only onnxruntime. A
detector runs its two ONNX parts (see :mod:`prunedet.deploy.parts`) and in
between and after them the steps that stay in PyTorch, with mmdet's own
code: proposals from the RPN outputs (anchors, decoding, NMS), RoIs, and
detections from the RoI head's outputs (decoding, per-class NMS).
"""
import json
import os.path as osp
from typing import List, Optional, Sequence

import numpy as np
import torch

DEPLOY_FILE = 'deploy.json'


def ort_session(path: str, threads: Optional[int] = None,
                spinning: bool = True, profile: Optional[str] = None):
    """An onnxruntime CPU session with all graph optimisations;
    ``threads``: intra-op threads (default: as many as torch uses).
    ``spinning=False`` for timing beside other sessions or PyTorch: a
    session's idle threads otherwise spin-wait, taking the cores from
    whatever runs next (two identical sessions timed in turn measured 1.45
    and 1.65 of each other, and eager PyTorch between them 2.3 times its
    own time; 0.89 and 1.0 without). ``profile``: a file prefix for
    onnxruntime's per-node profile (``session.end_profiling()``)."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    if not spinning:
        options.add_session_config_entry('session.intra_op.allow_spinning',
                                         '0')
    options.graph_optimization_level = \
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if profile:
        options.enable_profiling = True
        options.profile_file_prefix = profile
    return ort.InferenceSession(
        path, options, providers=['CPUExecutionProvider'])


def run_session(session, *inputs: torch.Tensor) -> List[torch.Tensor]:
    """Run ``session`` on tensors (in its input order), return tensors."""
    feed = {
        spec.name: np.ascontiguousarray(x.detach().cpu().numpy())
        for spec, x in zip(session.get_inputs(), inputs)
    }
    return [torch.from_numpy(o) for o in session.run(None, feed)]


def _session_fn(session):
    return lambda *inputs: run_session(session, *inputs)


def read_deploy_info(export_dir: str) -> dict:
    """What ``tools/deployment/export.py`` wrote about the export."""
    path = osp.join(export_dir, DEPLOY_FILE)
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'{export_dir} holds no {DEPLOY_FILE}: not a folder written by '
            'tools/deployment/export.py')
    with open(path) as f:
        return json.load(f)


class OnnxTwoStageDetector:
    """A two-stage detector from its exported parts, predicting like
    mmdet's ``TwoStageDetector.predict`` on preprocessed inputs.

    Args:
        export_dir: the folder ``tools/deployment/export.py`` wrote.
        threads: onnxruntime's intra-op threads.
        parts: ``{'features': fn, 'roi_head': fn}`` to run instead of the
            ONNX files (tensors in, tensors out), e.g. the PyTorch parts, to
            check this post-processing against mmdet's ``predict``.
    """

    def __init__(self, export_dir: str, threads: Optional[int] = None,
                 parts: Optional[dict] = None):
        from mmdet.registry import MODELS
        from mmdet.utils import register_all_modules
        from mmengine.config import ConfigDict
        register_all_modules(init_default_scope=False)
        info = read_deploy_info(export_dir)
        if info.get('task') != 'detection':
            raise ValueError(f'{export_dir} holds a {info.get("task")} '
                             'export, not a detector')
        if parts is None:
            files = info['files']['onnx']
            parts = {
                name: _session_fn(
                    ort_session(osp.join(export_dir, files[name]), threads))
                for name in ('features', 'roi_head')
            }
        self.features, self.roi_head = parts['features'], parts['roi_head']
        self.test_cfg = ConfigDict(info['test_cfg'])
        # only the heads' post-processing is used: their layers are built
        # at the smallest size, the exported parts hold the real ones
        self.rpn_head = MODELS.build(
            dict(info['rpn_head'], _scope_='mmdet', in_channels=1,
                 feat_channels=1, test_cfg=self.test_cfg.rpn))
        self.bbox_head = MODELS.build(
            dict(info['bbox_head'], _scope_='mmdet', in_channels=1,
                 fc_out_channels=1, roi_feat_size=1))
        self.classes = info.get('classes')

    def propose(self, inputs: torch.Tensor, batch_img_metas: Sequence[dict]):
        """The feature map and the RPN's proposals (``InstanceData`` with
        ``bboxes``, ``scores``) per image."""
        feature, rpn_cls, rpn_reg = self.features(inputs)
        proposals = self.rpn_head.predict_by_feat(
            [rpn_cls], [rpn_reg], batch_img_metas=list(batch_img_metas),
            cfg=self.test_cfg.rpn, rescale=False)
        return feature, proposals

    def predict(self, inputs: torch.Tensor, batch_img_metas: Sequence[dict],
                rescale: bool = False) -> list:
        """Detections (mmengine ``InstanceData`` with ``bboxes``, ``scores``,
        ``labels``) per image; ``batch_img_metas`` as mmdet's data samples'
        ``metainfo`` (``img_shape``, ``scale_factor``, ...)."""
        from mmdet.models.utils import empty_instances
        from mmdet.structures.bbox import bbox2roi
        batch_img_metas = list(batch_img_metas)
        feature, proposals = self.propose(inputs, batch_img_metas)
        boxes = [p.bboxes for p in proposals]
        rois = bbox2roi(boxes)
        if rois.shape[0] == 0:
            return empty_instances(
                batch_img_metas, rois.device, task_type='bbox',
                box_type=self.bbox_head.predict_box_type,
                num_classes=self.bbox_head.num_classes)
        cls_score, bbox_pred = self.roi_head(feature, rois)
        counts = tuple(len(b) for b in boxes)
        return self.bbox_head.predict_by_feat(
            rois=rois.split(counts, 0),
            cls_scores=cls_score.split(counts, 0),
            bbox_preds=bbox_pred.split(counts, 0),
            batch_img_metas=batch_img_metas,
            rcnn_test_cfg=self.test_cfg.rcnn,
            rescale=rescale)
