"""One optimizer wrapper per part of a GAL model, in an OptimWrapperDict.

mmengine's default constructor builds one optimizer for a whole model; GAL
steps three parts with three optimizers (SGD for the student's weights,
SGD for the discriminator, FISTA for the masks). Each part is built by the
default constructor from its own config, so ``paramwise_cfg`` and every
optimizer wrapper option work per part::

    optim_wrapper = dict(
        constructor='GALOptimWrapperConstructor',
        student=dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9)),
        discriminator=dict(optimizer=dict(type='SGD', lr=0.01)),
        masks=dict(optimizer=dict(type='FISTA', lr=0.01, sparsity=0.01)))
"""
import copy
from typing import Optional

from mmengine.model import is_model_wrapper
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapperDict
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS

from .algorithm import OPTIM_PARTS


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class GALOptimWrapperConstructor:
    """Builds ``student``, ``discriminator`` and ``masks`` wrappers for the
    parts :meth:`~prunedet.gal.GAL.optim_parts` names."""

    def __init__(self, optim_wrapper_cfg: dict,
                 paramwise_cfg: Optional[dict] = None):
        if paramwise_cfg:
            raise ValueError('GALOptimWrapperConstructor: give paramwise_cfg '
                             'inside a part (student=dict(paramwise_cfg=...))')
        parts = set(optim_wrapper_cfg)
        if parts != set(OPTIM_PARTS):
            raise ValueError(
                f'GAL: optim_wrapper needs exactly the parts {OPTIM_PARTS} '
                f'(and constructor), got {sorted(parts)}')
        self.cfgs = copy.deepcopy(dict(optim_wrapper_cfg))
        for name, cfg in self.cfgs.items():
            if not isinstance(cfg, dict) or 'optimizer' not in cfg:
                raise ValueError(f'GAL: optim_wrapper.{name} must be a dict '
                                 'with an optimizer')
            cfg.setdefault('type', 'OptimWrapper')

    def __call__(self, model) -> OptimWrapperDict:
        model = model.module if is_model_wrapper(model) else model
        if not hasattr(model, 'optim_parts'):
            raise TypeError('GALOptimWrapperConstructor builds the optimizers '
                            f'of a GAL model, not of {type(model).__name__}')
        parts = model.optim_parts()
        wrappers = {}
        for name in OPTIM_PARTS:
            cfg = copy.deepcopy(self.cfgs[name])
            paramwise = cfg.pop('paramwise_cfg', None)
            wrappers[name] = DefaultOptimWrapperConstructor(cfg, paramwise)(
                parts[name])
        return OptimWrapperDict(**wrappers)
