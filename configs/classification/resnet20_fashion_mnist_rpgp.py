# RPGP removing 70% of the channels (the FLOPs cut follows from the layers).
_base_ = ['./resnet20_fashion_mnist.py', '../_base_/pruning/rpgp.py']
custom_hooks = [
    dict(_base_.custom_hooks[0], target='channels', target_ratio=0.7)
]
