# TCP (transfer channel pruning): adapt with MMD for half of training, rank
# channels once by the Taylor criterion on the adaptation loss (per domain,
# layer-wise L2-normalised, ranked across layers), remove the weakest down
# to 35% fewer FLOPs, fine-tune (still adapting) for the second half.
# Same layers as RPGP: convs, fc6/fc7 and the bottleneck.
# The hook only: combine with a recipe and data, e.g.
# _base_ = ['./_base_/mmd.py', './_base_/tcp.py', '../_base_/datasets/...'].
custom_hooks = [
    dict(
        type='ProgressivePruningHook',
        criterion=dict(type='TCP'),
        target='flops',
        target_ratio=0.35,
        by_epoch=False,
        interval=None,
        end=0.5,
        global_ranking=True,
        prunable=['backbone', 'neck'],
        soft_steps=0),
]
