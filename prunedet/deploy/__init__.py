"""Deployment: BN folding, export to ONNX and ``torch.export``, checks
against PyTorch, and a runtime for exported detectors."""
from .export import (ATOL, RTOL, ExportMismatchError, check_close,
                     export_model)
from .fold import count_batchnorms, fold_batchnorm
from .parts import exportable_parts
from .runtime import OnnxTwoStageDetector, ort_session, run_session

__all__ = [
    'ATOL', 'RTOL', 'ExportMismatchError', 'check_close', 'export_model',
    'count_batchnorms', 'fold_batchnorm', 'exportable_parts',
    'OnnxTwoStageDetector', 'ort_session', 'run_session'
]
