# RPGP on Faster R-CNN VGG16: every 1000 iterations the backbone filters with
# the lowest |dL/dW * W| go, towards 30% fewer FLOPs at the VOC test size
# (the seed: 250G -> 174G), all within the first 15% of training (about 15k
# of 99k iterations), so that the rest runs at the final widths: the
# schedule benchmark_detection.py measured fastest at the same mAP (README).
# Cutting conv5_3 also cuts the RPN conv and fc6.
_base_ = ['./faster_rcnn_vgg16_voc.py', './_base_/pruning/rpgp.py']
custom_hooks = [
    dict(
        _base_.custom_hooks[0],
        target_ratio=0.3,
        interval=1000,
        end=0.15,
        round_to=8,  # multiples of 8: faster oneDNN kernels
        # conv5_3 (features.28) loses 3/4 of its channels, the other convs
        # what the FLOPs target leaves: its width sets RoIAlign's and fc6's
        # cost, which a training step pays on 512 RoIs (README)
        layer_ratios={'backbone.features.28': 0.75},
        input_shape=(3, 600, 1000)),
]
