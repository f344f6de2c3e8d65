_base_ = [
    '../_base_/models/resnet20_cifar.py', '../_base_/datasets/mnist.py',
    '../_base_/schedules/mnist_bs128.py', '../_base_/default_runtime.py'
]
model = dict(backbone=dict(in_channels=1))
