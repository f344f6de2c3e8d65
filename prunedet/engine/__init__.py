"""Runner-side pieces: the pruning hook and safe checkpoint I/O."""
from . import checkpoint_io  # noqa: F401  (installs the loader and backend)
from .hooks import ProgressivePruningHook

__all__ = ['ProgressivePruningHook']
