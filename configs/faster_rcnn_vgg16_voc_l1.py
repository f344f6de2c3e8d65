# L1-norm baseline: train half the schedule, prune the backbone once by filter
# L1 norm to 30% fewer FLOPs, fine-tune the rest.
_base_ = ['./faster_rcnn_vgg16_voc.py', './_base_/pruning/l1.py']
custom_hooks = [
    dict(
        _base_.custom_hooks[0],
        target='flops',
        target_ratio=0.3,
        round_to=8,  # multiples of 8: faster oneDNN kernels
        input_shape=(3, 600, 1000)),
]
