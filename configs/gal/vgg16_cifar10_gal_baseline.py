# GAL stage 1: the baseline VGG-16 on CIFAR-10, GAL's teacher and the student's
# start. Next: vgg16_cifar10_gal-0.05.py or _gal-0.1.py.
_base_ = [
    '../_base_/models/vgg16bn_cifar.py', '../_base_/datasets/cifar10.py',
    '../_base_/schedules/cifar10_bs128.py', '../_base_/default_runtime.py'
]
