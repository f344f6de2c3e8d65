# RPGP while adapting: GradientNorm ranks filters with the gradients of the
# full loss (source CE + lambda * MMD); every 100 iterations up to 3/4 of
# training, towards 35% fewer FLOPs. Pruned: the conv filters, the fc6/fc7
# units (`backbone`) and the bottleneck units (`neck`), each with the inputs
# of the layer that reads them; the classifier keeps its outputs.
# The hook only: combine with a recipe and data, e.g.
# _base_ = ['./_base_/mmd.py', './_base_/rpgp.py', '../_base_/datasets/...'].
_base_ = ['../../_base_/pruning/rpgp.py']
custom_hooks = [
    dict(
        _base_.custom_hooks[0],
        target_ratio=0.35,
        prunable=['backbone', 'neck']),
]
