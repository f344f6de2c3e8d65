"""Discrimination-aware channel pruning (DCP, Zhuang et al. NeurIPS 2018).

Stage 1 trains :class:`DCPClassifier` (auxiliary losses inside the network),
stage 2 selects channels layer by layer (:class:`GreedyChannelSelection`,
run by :class:`prunedet.engine.loops.DCPSelectionLoop`), stage 3 fine-tunes
the pruned plain classifier. Configs: ``configs/dcp/``.
"""
from .aux_classifier import AuxHead, DCPClassifier
from .objective import joint_loss, layer_objective
from .selection import SUB_OPTIMIZER, GreedyChannelSelection, channel_scores

__all__ = [
    'AuxHead', 'DCPClassifier', 'GreedyChannelSelection', 'SUB_OPTIMIZER',
    'channel_scores', 'joint_loss', 'layer_objective'
]
