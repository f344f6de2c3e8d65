from .progressive_pruning_hook import ProgressivePruningHook

__all__ = ['ProgressivePruningHook']
