"""An image classifier adapted to an unlabelled target domain with MMD (DAN).

Training batches come from :class:`~prunedet.datasets.DomainPairDataset`:
labelled source images plus as many unlabelled target images
(``target_inputs``). Both go through the network in one pass; the loss is

    CE(source) + lambda(p) * MK-MMD(source features, target features)

on the neck's output (the bottleneck, the "adaptation head"). ``lambda``
is 0 for ``warmup_iters`` source-only iterations, then ramps up as
``2 / (1 + exp(-gamma * p)) - 1`` with ``p`` the progress of the rest of
training (Ganin & Lempitsky's schedule, as in the public TCP code). From
scratch the warm-up matters: features that do not yet separate the classes
are cheaper to collapse than to align (a constant feature has zero MMD), so
the MMD must weigh in only once the source cross-entropy has shaped them.
The variance of the adapted features is logged (``feat_var``) for
:class:`~prunedet.engine.hooks.CollapseGuardHook`.

Everything else (prediction, ``mode='tensor'``, the head, evaluation on the
target alone) is mmpretrain's ``ImageClassifier``; in tensor mode the logits
depend on every conv, fc6, fc7 and the bottleneck, so the pruning hook traces
and couples all of them.
"""
import math
from typing import List, Optional, Tuple

import torch
from mmengine.logging import MessageHub
from mmpretrain.models import ClsDataPreprocessor, ImageClassifier
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

LAMBDA_RAMPS = ('sigmoid', 'constant')


@MODELS.register_module()
class DomainPairPreprocessor(ClsDataPreprocessor):
    """``ClsDataPreprocessor`` that also normalises ``target_inputs``."""

    def forward(self, data: dict, training: bool = False) -> dict:
        out = super().forward(data, training)
        if data.get('target_inputs') is not None:
            out['target_inputs'] = super().forward(
                dict(inputs=data['target_inputs']), training)['inputs']
        return out


def training_iters() -> Tuple[Optional[int], Optional[int]]:
    """(iterations done, total) from mmengine's message hub; ``None``
    outside a training run (e.g. a bare ``train_step``)."""
    hub = MessageHub.get_current_instance()
    return hub.get_info('iter'), hub.get_info('max_iters')


def feature_variance(feats: torch.Tensor) -> torch.Tensor:
    """Variance over the batch, averaged over the dimensions (detached): 0
    for a constant feature."""
    return feats.detach().flatten(1).var(0, unbiased=False).mean()


@MODELS.register_module()
class MMDClassifier(ImageClassifier):
    """``ImageClassifier`` + MK-MMD between source and target neck features.

    Args:
        backbone, neck, head, train_cfg, init_cfg: as for ``ImageClassifier``.
        mmd_loss: config of the discrepancy (``MKMMDLoss``); ``None`` trains
            on the source alone (the source-only baseline).
        mmd_weight: the final ``lambda``.
        lambda_ramp: ``'sigmoid'`` (ramp-up over training) or ``'constant'``.
        ramp_gamma: steepness of the sigmoid ramp.
        warmup_iters: source-only iterations (``lambda = 0``) before the
            ramp (or the constant weight) starts.
        data_preprocessor: defaults to :class:`DomainPairPreprocessor`.
    """

    def __init__(self,
                 *args,
                 mmd_loss: Optional[dict] = dict(type='MKMMDLoss'),
                 mmd_weight: float = 1.,
                 lambda_ramp: str = 'sigmoid',
                 ramp_gamma: float = 10.,
                 warmup_iters: int = 0,
                 data_preprocessor: Optional[dict] = None,
                 **kwargs):
        if lambda_ramp not in LAMBDA_RAMPS:
            raise ValueError(f'lambda_ramp must be one of {LAMBDA_RAMPS}, '
                             f'got {lambda_ramp!r}')
        if isinstance(warmup_iters, bool) or not isinstance(
                warmup_iters, int) or warmup_iters < 0:
            raise ValueError('warmup_iters must be a number of iterations '
                             f'(an int >= 0), got {warmup_iters!r}')
        data_preprocessor = dict(data_preprocessor or {})
        data_preprocessor.setdefault('type', 'DomainPairPreprocessor')
        super().__init__(*args, data_preprocessor=data_preprocessor, **kwargs)
        self.mmd_loss = MODELS.build(mmd_loss) if mmd_loss else None
        self.mmd_weight = mmd_weight
        self.lambda_ramp = lambda_ramp
        self.ramp_gamma = ramp_gamma
        self.warmup_iters = warmup_iters

    def mmd_lambda(self,
                   done: Optional[int] = None,
                   total: Optional[int] = None) -> float:
        """``lambda`` after ``done`` of ``total`` training iterations (the
        final weight outside a training run)."""
        if done is None or not total:
            return self.mmd_weight
        if done < self.warmup_iters:
            return 0.
        if self.lambda_ramp == 'constant':
            return self.mmd_weight
        progress = min((done - self.warmup_iters) /
                       max(total - self.warmup_iters, 1), 1.)
        ramp = 2. / (1. + math.exp(-self.ramp_gamma * progress)) - 1.
        return self.mmd_weight * ramp

    def forward(self,
                inputs: torch.Tensor,
                data_samples: Optional[List[DataSample]] = None,
                mode: str = 'tensor',
                target_inputs: Optional[torch.Tensor] = None):
        if mode == 'loss':
            return self.loss(inputs, data_samples, target_inputs)
        return super().forward(inputs, data_samples, mode)

    def loss(self,
             inputs: torch.Tensor,
             data_samples: List[DataSample],
             target_inputs: Optional[torch.Tensor] = None) -> dict:
        if self.mmd_loss is None:
            return super().loss(inputs, data_samples)
        if target_inputs is None:
            raise ValueError(
                'MMDClassifier needs a target batch with every source batch '
                '(target_inputs): train on a DomainPairDataset')
        n = inputs.size(0)
        feats = self.extract_feat(torch.cat([inputs, target_inputs]))
        losses = self.head.loss(tuple(f[:n] for f in feats), data_samples)
        weight = self.mmd_lambda(*training_iters())
        adapted = feats[-1]
        mmd = self.mmd_loss(adapted[:n], adapted[n:])
        losses['loss_mmd'] = weight * mmd
        # logged, not optimised (no 'loss' in the names)
        losses['mmd'] = mmd.detach()
        losses['mmd_lambda'] = mmd.new_tensor(weight)
        losses['feat_var'] = feature_variance(adapted)
        return losses
