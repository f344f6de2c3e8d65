"""Export a (pruned) model with its BN folded, to ONNX and to a
``torch.export`` program, each file checked against the PyTorch model.

Every check runs the original model (BN unfolded, mmcv's kernels) and the
exported file on the same new inputs, with another batch size than the
export's examples (the batch, image size and RoI count are dynamic), and
requires for each output tensor

    max |exported - pytorch| <= atol + rtol * max |pytorch|

(defaults :data:`ATOL`, :data:`RTOL`: float32 rounding differences through a
deep network, orders of magnitude below what a wrong weight or layer gives).
"""
import json
import os
import os.path as osp
import warnings
from typing import Dict, Iterable, List, Sequence

import torch
import torch.nn as nn

from .fold import count_batchnorms, fold_batchnorm
from .parts import (INPUT_NAMES, OUTPUT_NAMES, dynamic_shapes,
                    example_inputs, exportable_parts, is_detector,
                    num_test_rois)
from .runtime import (DEPLOY_FILE, OnnxTwoStageDetector, ort_session,
                      run_session)

ATOL = 1e-5
RTOL = 1e-4
FORMATS = ('onnx', 'pt2')


class ExportMismatchError(AssertionError):
    """An exported model does not compute what the PyTorch model does."""


def max_error(outputs: Sequence[torch.Tensor],
              references: Sequence[torch.Tensor]) -> List[tuple]:
    """``(max |out - ref|, max |ref|)`` per output tensor."""
    if len(outputs) != len(references):
        raise ExportMismatchError(f'{len(outputs)} outputs, expected '
                                  f'{len(references)}')
    errors = []
    for out, ref in zip(outputs, references):
        if out.shape != ref.shape:
            raise ExportMismatchError(
                f'output of shape {tuple(out.shape)}, expected '
                f'{tuple(ref.shape)}')
        ref = ref.detach().float()
        diff = (out.detach().float() - ref).abs()
        errors.append((diff.max().item() if diff.numel() else 0.,
                       ref.abs().max().item() if ref.numel() else 0.))
    return errors


def check_close(what: str, outputs, references, atol: float = ATOL,
                rtol: float = RTOL) -> float:
    """The largest error relative to its bound (<= 1 passes); raises
    :class:`ExportMismatchError` naming ``what`` otherwise."""
    worst = 0.
    for i, (err, scale) in enumerate(max_error(outputs, references)):
        bound = atol + rtol * scale
        if not err <= bound:  # also catches NaN
            raise ExportMismatchError(
                f'{what}: output {i} differs from PyTorch by {err:.3g} '
                f'(allowed {bound:.3g} = {atol:g} + {rtol:g} * {scale:.3g})')
        worst = max(worst, err / bound)
    return worst


def _outputs(module: nn.Module, args) -> List[torch.Tensor]:
    with torch.no_grad():
        out = module(*args)
    return list(out) if isinstance(out, (tuple, list)) else [out]


def export_onnx(module: nn.Module, args: tuple, path: str,
                dynamic: tuple, input_names: List[str],
                output_names: List[str]) -> str:
    """``torch.onnx.export`` (the ``torch.export``-based exporter) to one
    self-contained file."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        program = torch.onnx.export(
            module, args, dynamo=True, dynamic_shapes=dynamic,
            input_names=input_names, output_names=output_names,
            verbose=False)
    program.save(path, external_data=False)
    return path


def export_program(module: nn.Module, args: tuple, path: str,
                   dynamic: tuple) -> str:
    """A ``torch.export`` program (``torch.export.load(path).module()``
    runs it with torch alone; the RoI head needs ``import torchvision``)."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        program = torch.export.export(module, args, dynamic_shapes=dynamic)
    torch.export.save(program, path)
    return path


def run_exported(path: str, args: tuple) -> List[torch.Tensor]:
    """Outputs of an exported ``.onnx`` (onnxruntime) or ``.pt2`` file."""
    if path.endswith('.onnx'):
        return run_session(ort_session(path), *args)
    import torchvision  # noqa: F401  (registers torchvision::roi_align)
    return _outputs(torch.export.load(path).module(), args)


def export_model(model: nn.Module, shape: Sequence[int], out_dir: str,
                 formats: Iterable[str] = FORMATS, atol: float = ATOL,
                 rtol: float = RTOL, info: Dict = None) -> dict:
    """Fold, export and check ``model`` (eval mode) for inputs of ``shape``
    (C, H, W). Writes ``<part>.onnx``/``<part>.pt2`` and ``deploy.json``
    into ``out_dir``; returns what ``deploy.json`` holds, with one row per
    check under ``checks``."""
    formats = list(formats)
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise ValueError(f'unknown export formats {sorted(unknown)}, '
                         f'choose from {list(FORMATS)}')
    os.makedirs(out_dir, exist_ok=True)
    model.eval()
    detector = is_detector(model)
    num_rois = num_test_rois(model) if detector else 0
    folded = fold_batchnorm(model)
    reference = exportable_parts(model, torchvision_roi_align=False)
    parts = exportable_parts(folded)
    examples = example_inputs(parts, shape, 2, num_rois)
    # checked on other inputs: another batch size and RoI count
    checks_in = example_inputs(reference, shape, 3, max(num_rois // 2, 1))
    checks, files = [], {f: {} for f in formats}
    tol = dict(atol=atol, rtol=rtol)
    for name, part in parts.items():
        expected = _outputs(reference[name], checks_in[name])
        checks.append(dict(part=name, what='BN folded (PyTorch)',
                           error=check_close(f'{name} with BN folded',
                                             _outputs(part, checks_in[name]),
                                             expected, **tol)))
        for fmt in formats:
            path = osp.join(out_dir, f'{name}.{fmt}')
            if fmt == 'onnx':
                export_onnx(part, examples[name], path, dynamic_shapes(name),
                            INPUT_NAMES[name], OUTPUT_NAMES[name])
                what = 'ONNX (onnxruntime)'
            else:
                export_program(part, examples[name], path,
                               dynamic_shapes(name))
                what = 'torch.export program'
            files[fmt][name] = osp.basename(path)
            error = check_close(f'{path}', run_exported(
                path, checks_in[name]), expected, **tol)
            checks.append(dict(part=name, what=what, error=error))
    result = dict(
        task='detection' if detector else 'classification',
        input_shape=list(shape),
        inputs={n: INPUT_NAMES[n] for n in parts},
        outputs={n: OUTPUT_NAMES[n] for n in parts},
        files=files,
        batchnorms_folded=count_batchnorms(model) - count_batchnorms(folded),
        batchnorms_left=count_batchnorms(folded),
        tolerance=dict(atol=atol, rtol=rtol,
                       rule='max|exported - pytorch| <= atol + rtol * '
                       'max|pytorch| per output; error = that ratio'),
        checks=checks,
        **(info or {}))
    if detector:
        result.update(detector_info(model))
    write_deploy_info(result, out_dir)
    if detector and 'onnx' in formats:  # the runtime reads deploy.json
        checks.append(dict(
            part='detector', what='post-processing = mmdet predict',
            **check_detections(model, out_dir, checks_in['features'][0],
                               **tol)))
        write_deploy_info(result, out_dir)
    return result


def write_deploy_info(info: dict, out_dir: str) -> None:
    """``deploy.json``: what the runtime (:mod:`.runtime`) reads."""
    with open(osp.join(out_dir, DEPLOY_FILE), 'w') as f:
        json.dump(info, f, indent=1)


def check_detections(model: nn.Module, out_dir: str, images: torch.Tensor,
                     atol: float = ATOL, rtol: float = RTOL) -> dict:
    """The exported detector's post-processing in PyTorch
    (:class:`OnnxTwoStageDetector`) is mmdet's: run on the PyTorch parts it
    finds the proposals and detections of ``model.predict`` (or raises).
    Run on the ONNX files, it finds nearly the same: NMS keeps one of two
    boxes whose scores tie within float rounding, so the share of boxes
    found again (same label, IoU >= 0.99, score within tolerance) is
    reported, not required."""
    from mmdet.structures import DetDataSample
    height, width = images.shape[-2:]
    meta = dict(img_shape=(height, width), ori_shape=(height, width),
                pad_shape=(height, width), batch_input_shape=(height, width),
                scale_factor=(1., 1.))
    samples = [DetDataSample(metainfo=meta) for _ in images]
    metas = [meta] * len(images)
    with torch.no_grad():
        expected = model.rpn_head.predict(
            model.extract_feat(images), samples, rescale=False)
        expected += [s.pred_instances for s in model.predict(
            images, samples, rescale=False)]
    reference = {name: lambda *x, part=part: _outputs(part, x)
                 for name, part in exportable_parts(model, False).items()}
    worst, matched, total = 0., 0, 0
    for parts in (reference, None):
        deployed = OnnxTwoStageDetector(out_dir, parts=parts)
        with torch.no_grad():
            found = deployed.propose(images, metas)[1] + deployed.predict(
                images, metas)
        for i, (exp, got) in enumerate(zip(expected, found)):
            if parts is None:
                matched += _matches(got, exp, atol, rtol)
                total += len(exp)
                continue
            what = (f'post-processing of {out_dir}: image {i % len(images)}'
                    f', {"detections" if i >= len(images) else "proposals"}')
            if len(got) != len(exp) or not torch.equal(got.labels,
                                                       exp.labels):
                raise ExportMismatchError(
                    f'{what}: {len(got)} boxes (labels '
                    f'{got.labels.tolist()[:10]}), PyTorch finds {len(exp)}'
                    f' ({exp.labels.tolist()[:10]})')
            worst = max(worst, check_close(
                what, [got.bboxes, got.scores], [exp.bboxes, exp.scores],
                atol, rtol))
    return dict(error=worst, boxes=total, onnx_found=matched / max(total, 1))


def _matches(got, exp, atol: float, rtol: float) -> int:
    """How many of ``exp``'s boxes ``got`` has too (same label, IoU >=
    0.99, score within tolerance)."""
    from mmdet.structures.bbox import bbox_overlaps
    if len(got) == 0 or len(exp) == 0:
        return 0
    iou = bbox_overlaps(exp.bboxes, got.bboxes)
    same = (exp.labels[:, None] == got.labels[None]) & (iou >= 0.99) & (
        (exp.scores[:, None] - got.scores[None]).abs() <=
        atol + rtol * exp.scores.abs().max())
    return int(same.any(1).sum())


def detector_info(model) -> dict:
    """What the post-processing in PyTorch needs (mmdet config dicts)."""
    if getattr(model, 'cfg', None) is None:
        raise ValueError('exporting a detector needs its config as '
                         '`model.cfg`: build it with prunedet.apis.init_model')
    cfg = model.cfg.model
    return dict(
        rpn_head={k: v for k, v in cfg.rpn_head.to_dict().items()
                  if k not in ('train_cfg', 'test_cfg')},
        bbox_head=cfg.roi_head.bbox_head.to_dict(),
        test_cfg=cfg.test_cfg.to_dict())
