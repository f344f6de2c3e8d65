# L1-norm pruning (Li et al.): train, prune once by filter L1 norm, fine-tune.
custom_hooks = [
    dict(
        type='ProgressivePruningHook',
        criterion=dict(type='L1Norm'),
        by_epoch=True,
        interval=None,
        target_ratio=0.5,
        end=0.5,
        soft_steps=0),
]
