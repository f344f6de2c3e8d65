# DCP stage 1: LeNet-5 on Fashion-MNIST trained with discrimination-aware
# auxiliary losses (configs/dcp/_base_/lenet5.py) on the baseline's schedule.
# Next: lenet5_fashion_mnist_dcp_stage2.py.
_base_ = ['../classification/lenet5_fashion_mnist.py', './_base_/lenet5.py']
model = dict(_base_.dcp_model)
