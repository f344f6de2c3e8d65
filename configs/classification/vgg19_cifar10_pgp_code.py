# PGP as its public code runs it (configs/_base_/pruning/pgp_code.py) on
# the settings of vgg19_cifar10_pgp.py.
_base_ = ['./vgg19_cifar10_pgp.py', '../_base_/pruning/pgp_code.py']
custom_hooks = [dict(_base_.custom_hooks[0], **_base_.pgp_code)]
