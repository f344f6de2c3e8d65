from .gal_removal_hook import GALRemovalHook
from .progressive_pruning_hook import ProgressivePruningHook
from .random_state_hook import RandomStateHook
from .safe_checkpoint_hook import SafeCheckpointHook

__all__ = [
    'GALRemovalHook', 'ProgressivePruningHook', 'RandomStateHook',
    'SafeCheckpointHook'
]
