# The demo with the RPGP of configs/faster_rcnn_vgg16_voc_rpgp.py: every 5
# iterations until iteration 45 (the first 15% of training), towards 30%
# fewer FLOPs. An early cut is what makes pruning pay in wall-clock: every
# iteration after it runs at the final widths (benchmark_detection.py
# measures this schedule against later ones).
_base_ = ['./faster_rcnn_vgg16_shapes.py', '../_base_/pruning/rpgp.py']
custom_hooks = [
    dict(
        _base_.custom_hooks[0],
        target_ratio=0.3,
        interval=5,
        end=0.15,
        round_to=8,  # multiples of 8: faster oneDNN kernels
        # conv5_3 (features.40 with BN) loses 3/4 of its channels, the other
        # convs what the FLOPs target leaves: its width sets RoIAlign's and
        # fc6's cost, which a training step pays on 512 RoIs (README)
        layer_ratios={'backbone.features.40': 0.75},
        input_shape=(3, 256, 256)),
]
