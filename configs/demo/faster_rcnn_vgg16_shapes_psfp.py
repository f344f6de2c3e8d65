# The demo with PSFP: every 20 iterations until iteration 180 the filters of
# lowest L2 norm are zeroed (they may recover), towards 30% fewer FLOPs;
# what is zeroed at the end of the window is removed.
_base_ = ['./faster_rcnn_vgg16_shapes.py', '../_base_/pruning/psfp.py']
custom_hooks = [
    dict(
        _base_.custom_hooks[0],
        target='flops',
        target_ratio=0.3,
        by_epoch=False,
        interval=20,
        end=0.6,
        round_to=8,  # multiples of 8: faster oneDNN kernels
        input_shape=(3, 256, 256)),
]
