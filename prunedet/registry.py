"""Registries owned by prunedet.

Models, datasets and hooks are registered in the registries of the library
they extend (mmdet, mmpretrain, mmengine), so stock configs can name them.
Only the pruning criteria are new: they get a registry of their own, a child
of nothing, that other OpenMMLab projects may parent their own registries on.
"""
from mmengine.registry import Registry

CRITERIA = Registry(
    'pruning criterion', scope='prunedet', locations=['prunedet.criteria'])
