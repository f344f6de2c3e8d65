# PSFP baseline: each epoch the backbone filters of lowest L2 norm are zeroed
# (soft, they keep training), the ratio rising exponentially; the zeroed
# filters are removed at the end of the window.
_base_ = ['./faster_rcnn_vgg16_voc.py']
custom_hooks = [
    dict(
        type='ProgressivePruningHook',
        criterion=dict(type='L2Norm'),
        target='flops',
        target_ratio=0.3,
        by_epoch=True,
        end=0.75,
        ramp='exponential',
        soft_steps=None,
        prunable=['backbone'],
        input_shape=(3, 600, 1000)),
]
