"""Pruning criteria: one registered class each (see :mod:`.base`)."""
from .activation import TaylorActivation
from .base import BaseCriterion
from .gradient import GradientL1, GradientNorm, TaylorWeight
from .magnitude import L1Norm, L2Norm, Random
from .tcp import TCP

__all__ = [
    'BaseCriterion', 'GradientNorm', 'TaylorWeight', 'GradientL1', 'L1Norm',
    'L2Norm', 'Random', 'TaylorActivation', 'TCP'
]
