# DCP stage 1: ResNet-20 on Fashion-MNIST trained with discrimination-aware
# auxiliary losses (configs/dcp/_base_/resnet20.py) on the baseline's schedule.
# Next: resnet20_fashion_mnist_dcp_stage2.py.
_base_ = [
    '../classification/resnet20_fashion_mnist.py', './_base_/resnet20.py'
]
model = dict(_base_.dcp_model)
