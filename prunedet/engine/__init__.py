"""Runner-side pieces: the hooks, safe checkpoint I/O, the runner's model."""
from . import checkpoints  # noqa: F401  (registers the 'atomic_local' backend)
from .hooks import ProgressivePruningHook, SafeCheckpointHook
from .hooks.collapse_guard_hook import CollapseGuardHook
from .loops import DCPSelectionLoop  # noqa: F401  (DCP stage 2)
from .runner import PruningRunner

__all__ = [
    'CollapseGuardHook', 'ProgressivePruningHook', 'PruningRunner',
    'SafeCheckpointHook'
]
