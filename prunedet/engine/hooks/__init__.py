from .progressive_pruning_hook import ProgressivePruningHook
from .safe_checkpoint_hook import SafeCheckpointHook

__all__ = ['ProgressivePruningHook', 'SafeCheckpointHook']
