# RPGP removing 70% of the channels (the FLOPs cut follows from the layers).
_base_ = ['./resnet20_fashion_mnist.py', '../_base_/pruning/rpgp.py']
custom_hooks = [
    dict(
        type='ProgressivePruningHook',
        criterion=dict(type='GradientNorm'),
        target='channels',
        by_epoch=False,
        interval=100,
        target_ratio=0.7,
        end=0.75,
        soft_steps=1),
]
