# PSFP (He et al.): after every epoch until training ends, the filters of
# lowest L2 norm are zeroed and keep training (soft pruning: they may
# recover); the pruned ratio rises exponentially to the target at the last
# epoch. The network is what remains at the end: the filters zeroed then are
# removed after the last epoch (hard_at_end).
custom_hooks = [
    dict(
        type='ProgressivePruningHook',
        criterion=dict(type='L2Norm'),
        by_epoch=True,
        target_ratio=0.5,
        end=None,
        ramp='exponential',
        soft_steps=None,
        hard_at_end=True),
]
