# RPGP as its public code runs it (configs/_base_/pruning/rpgp_code.py) on
# the settings of resnet20_mnist_rpgp.py.
_base_ = ['./resnet20_mnist_rpgp.py', '../_base_/pruning/rpgp_code.py']
custom_hooks = [dict(_base_.custom_hooks[0], **_base_.rpgp_code)]
