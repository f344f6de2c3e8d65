# The demo with PGP: a pruning step after every epoch of the 400 training
# images (100 iterations at batch 4), towards 30% fewer FLOPs by iteration
# 180. The demo trains by iterations, so epochs are counted in iterations.
_base_ = ['./faster_rcnn_vgg16_shapes.py', '../_base_/pruning/pgp.py']
custom_hooks = [
    dict(
        _base_.custom_hooks[0],
        target_ratio=0.3,
        by_epoch=False,
        interval=100,
        end=0.6,
        round_to=8,  # multiples of 8: faster oneDNN kernels
        input_shape=(3, 256, 256)),
]
