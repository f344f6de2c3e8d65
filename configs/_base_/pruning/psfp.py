# PSFP (He et al.): every epoch the filters of lowest L2 norm are zeroed and
# keep training (soft pruning, they may recover); the pruned ratio rises
# exponentially; the zeroed filters are removed at the end of the window.
custom_hooks = [
    dict(
        type='ProgressivePruningHook',
        criterion=dict(type='L2Norm'),
        by_epoch=True,
        target_ratio=0.5,
        end=0.75,
        ramp='exponential',
        soft_steps=None,
        hard_at_end=True),
]
