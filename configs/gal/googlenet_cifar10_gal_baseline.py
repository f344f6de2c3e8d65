# GAL stage 1: the baseline GoogLeNet on CIFAR-10, GAL's teacher and the
# student's start. Next: googlenet_cifar10_gal-0.5.py.
_base_ = [
    '../_base_/models/googlenet_cifar.py', '../_base_/datasets/cifar10.py',
    '../_base_/schedules/cifar10_bs128.py', '../_base_/default_runtime.py'
]
