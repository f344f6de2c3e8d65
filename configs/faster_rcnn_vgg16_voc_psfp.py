# PSFP baseline: each epoch the backbone filters of lowest L2 norm are zeroed
# (soft, they keep training), the ratio rising exponentially; the zeroed
# filters are removed at the end of the window. 30% fewer FLOPs.
_base_ = ['./faster_rcnn_vgg16_voc.py', './_base_/pruning/psfp.py']
custom_hooks = [
    dict(
        _base_.custom_hooks[0],
        target='flops',
        target_ratio=0.3,
        round_to=8,  # multiples of 8: faster oneDNN kernels
        input_shape=(3, 600, 1000)),
]
