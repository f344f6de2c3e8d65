# TCP (transfer channel pruning, Yu et al. 2019) as its public code runs it:
# from the trained adaptation model (`load_from` the task's MMD run; see the
# transfer's config), rank the conv filters by the Taylor criterion on the
# adaptation loss (per domain, |batch mean of a * dL/da| per batch, L2-
# normalised per layer, a filter as weak as in its weaker domain), remove the
# `step_channels` weakest across layers, fine-tune for `interval` iterations
# with the adaptation loss, repeat until 35% of the FLOPs are gone (by `end`
# at the latest), then fine-tune. Conv filters only (`backbone.features`).
# The recipe's optimizer is kept: the code's fine-tuning epochs rebuild theirs
# with the DAN schedule (features at 1/5 of the classifier's lr).
# The hook only: combine with a recipe and data, e.g.
# _base_ = ['./_base_/mmd.py', './_base_/tcp.py', '../_base_/datasets/...'].
custom_hooks = [
    dict(
        type='ProgressivePruningHook',
        criterion=dict(type='TCP'),
        target='flops',
        target_ratio=0.35,
        by_epoch=False,
        interval=250,
        step_channels=64,
        end=0.6,
        global_ranking=True,
        prunable=['backbone.features'],
        soft_steps=0),
]
