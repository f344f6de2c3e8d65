# PGP: as RPGP, with one pruning step at the end of each epoch.
_base_ = ['./faster_rcnn_vgg16_voc.py', './_base_/pruning/pgp.py']
custom_hooks = [
    dict(
        _base_.custom_hooks[0],
        target_ratio=0.3,
        round_to=8,  # multiples of 8: faster oneDNN kernels
        input_shape=(3, 600, 1000))
]
