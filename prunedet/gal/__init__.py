"""GAL: structured pruning by generative adversarial learning (Lin et al.,
CVPR 2019).

A baseline (stage 1) is the frozen teacher of :class:`GAL` (stage 2), whose
student carries soft masks on filters, residual blocks or inception branches
(:mod:`.masks`), learnt label-free against a discriminator with FISTA
(:mod:`.fista`); :class:`~prunedet.engine.hooks.GALRemovalHook` then removes
what the masks switched off (:mod:`.removal`) and the plain pruned
classifier is fine-tuned (stage 3). Configs: ``configs/gal/``.
"""
from .algorithm import GAL, InputDropout
from .discriminator import GALDiscriminator
from .fista import FISTA
from .masks import SoftMasks, StructureMask
from .optim_constructor import GALOptimWrapperConstructor
from .removal import RemovalSummary, check_removal, remove_masked_structures

__all__ = [
    'FISTA', 'GAL', 'GALDiscriminator', 'GALOptimWrapperConstructor',
    'InputDropout', 'RemovalSummary', 'SoftMasks', 'StructureMask',
    'check_removal', 'remove_masked_structures'
]
