# DCP stage 1: ResNet-56 on CIFAR-10 trained with discrimination-aware
# auxiliary losses (configs/dcp/_base_/resnet56.py) on the baseline's schedule.
# Next: resnet56_cifar10_dcp_stage2.py.
_base_ = ['../classification/resnet56_cifar10.py', './_base_/resnet56.py']
model = dict(_base_.dcp_model)
