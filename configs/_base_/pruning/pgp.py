# PGP: prune at the end of each epoch, towards half the FLOPs, with the
# gradient criterion |dL/dW * W|. A filter selected twice in a row is removed
# (zeroed once before, so it may recover); the kept channels decay
# geometrically up to three quarters of training, the rest fine-tunes.
custom_hooks = [
    dict(
        type='ProgressivePruningHook',
        criterion=dict(type='GradientNorm'),
        target='flops',
        by_epoch=True,
        target_ratio=0.5,
        end=0.75,
        ramp='geometric',
        soft_steps=1),
]
