# The demo with Taylor pruning (Molchanov et al.): from the trained baseline
# (train configs/demo/faster_rcnn_vgg16_shapes.py first), every 10
# iterations the 16 globally weakest backbone channels go, until 30% fewer
# FLOPs; then fine-tuning at a tenth of the learning rate.
_base_ = ['./faster_rcnn_vgg16_shapes.py', '../_base_/pruning/taylor.py']
load_from = 'work_dirs/faster_rcnn_vgg16_shapes/iter_300.pth'
optim_wrapper = dict(optimizer=dict(lr=0.002))
custom_hooks = [
    dict(
        _base_.custom_hooks[0],
        target_ratio=0.3,
        step_channels=16,
        interval=10,
        end=0.6,
        round_to=8,  # multiples of 8: faster oneDNN kernels
        input_shape=(3, 256, 256)),
]
