# RPGP: PGP pruning every `interval` iterations instead of every epoch.
custom_hooks = [
    dict(
        type='ProgressivePruningHook',
        criterion=dict(type='GradientNorm'),
        target='flops',
        by_epoch=False,
        interval=100,
        target_ratio=0.5,
        end=0.75,
        ramp='geometric',
        soft_steps=1),
]
