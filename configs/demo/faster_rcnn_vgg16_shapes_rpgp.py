# The demo with the RPGP of configs/faster_rcnn_vgg16_voc_rpgp.py: every 20
# iterations until iteration 180, towards 30% fewer FLOPs.
_base_ = ['./faster_rcnn_vgg16_shapes.py', '../_base_/pruning/rpgp.py']
custom_hooks = [
    dict(
        _base_.custom_hooks[0],
        target_ratio=0.3,
        interval=20,
        end=0.6,
        round_to=8,  # multiples of 8: faster oneDNN kernels
        input_shape=(3, 256, 256)),
]
