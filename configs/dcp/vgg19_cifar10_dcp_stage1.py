# DCP stage 1: VGG-19 on CIFAR-10 trained with discrimination-aware auxiliary
# losses (configs/dcp/_base_/vgg19.py) on the baseline's schedule. Next:
# vgg19_cifar10_dcp_stage2.py.
_base_ = ['../classification/vgg19_cifar10.py', './_base_/vgg19.py']
model = dict(_base_.dcp_model)
