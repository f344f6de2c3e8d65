# GAL stage 1: the baseline ResNet-56 on CIFAR-10, GAL's teacher and the
# student's start. Next: resnet56_cifar10_gal-0.6.py or _gal-0.8.py.
_base_ = ['../classification/resnet56_cifar10.py']
