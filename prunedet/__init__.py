"""prunedet: progressive channel pruning while training, for OpenMMLab.

Importing the package registers everything prunedet adds (criteria, the
pruning hooks, GAL, models, datasets) so that any config can name them,
e.g. with ``custom_imports = dict(imports=['prunedet'])``.
"""
__version__ = '0.1.0'

from . import criteria, datasets, engine, gal, models  # noqa: F401,E402
