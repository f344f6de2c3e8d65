# PGP: as RPGP, with one pruning step at the end of each epoch.
_base_ = ['./faster_rcnn_vgg16_voc_rpgp.py']
custom_hooks = [
    dict(
        type='ProgressivePruningHook',
        criterion=dict(type='GradientNorm'),
        target='flops',
        target_ratio=0.3,
        by_epoch=True,
        end=0.75,
        soft_steps=1,
        prunable=['backbone'],
        input_shape=(3, 600, 1000)),
]
