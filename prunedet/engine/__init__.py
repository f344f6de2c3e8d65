"""Runner-side pieces: the hooks, safe checkpoint I/O, the runner's model."""
from . import checkpoints  # noqa: F401  (registers the 'atomic_local' backend)
from .hooks import ProgressivePruningHook, SafeCheckpointHook

__all__ = ['ProgressivePruningHook', 'SafeCheckpointHook']
