# The demo with L1-norm pruning (Li et al.): train, prune the backbone once
# at iteration 150 towards 30% fewer FLOPs, fine-tune the rest.
_base_ = ['./faster_rcnn_vgg16_shapes.py', '../_base_/pruning/l1.py']
custom_hooks = [
    dict(
        _base_.custom_hooks[0],
        target='flops',
        target_ratio=0.3,
        by_epoch=False,
        end=0.5,
        round_to=8,  # multiples of 8: faster oneDNN kernels
        input_shape=(3, 256, 256)),
]
