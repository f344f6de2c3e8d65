_base_ = [
    '../_base_/models/vgg19bn_cifar.py', '../_base_/datasets/cifar10.py',
    '../_base_/schedules/cifar10_bs128.py', '../_base_/default_runtime.py'
]
