# PGP as its public code runs it (configs/_base_/pruning/pgp_code.py) on
# the settings of faster_rcnn_vgg16_shapes_pgp.py.
_base_ = ['./faster_rcnn_vgg16_shapes_pgp.py', '../_base_/pruning/pgp_code.py']
custom_hooks = [dict(_base_.custom_hooks[0], **_base_.pgp_code)]
