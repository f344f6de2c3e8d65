# The demo with RPGP (configs/faster_rcnn_vgg16_voc_rpgp.py's pruning): every
# 20 iterations until iteration 180, towards 30% fewer FLOPs.
_base_ = ['./faster_rcnn_vgg16_shapes.py']
custom_hooks = [
    dict(
        type='ProgressivePruningHook',
        criterion=dict(type='GradientNorm'),
        target='flops',
        target_ratio=0.3,
        by_epoch=False,
        interval=20,
        end=0.6,
        soft_steps=1,
        prunable=['backbone'],
        input_shape=(3, 256, 256)),
]
