# L1-norm baseline: train half the schedule, prune the backbone once by filter
# L1 norm to 30% fewer FLOPs, fine-tune the rest.
_base_ = ['./faster_rcnn_vgg16_voc.py']
custom_hooks = [
    dict(
        type='ProgressivePruningHook',
        criterion=dict(type='L1Norm'),
        target='flops',
        target_ratio=0.3,
        by_epoch=True,
        interval=None,
        end=0.5,
        soft_steps=0,
        prunable=['backbone'],
        input_shape=(3, 600, 1000)),
]
