# DCP stage 1: the trained LeNet-5 baseline on Fashion-MNIST (train
# configs/classification/lenet5_fashion_mnist.py first) fine-tuned with
# discrimination-aware auxiliary losses (configs/dcp/_base_/lenet5.py) on the
# public code's stage-1 schedule (configs/dcp/_base_/stage1.py). Next:
# lenet5_fashion_mnist_dcp_stage2.py.
_base_ = [
    '../classification/lenet5_fashion_mnist.py',
    './_base_/lenet5.py',
    './_base_/stage1.py',
]
load_from = 'work_dirs/lenet5_fashion_mnist/epoch_20.pth'
model = dict(_base_.dcp_model)
param_scheduler = _base_.stage1_mnist.param_scheduler
train_cfg = _base_.stage1_mnist.train_cfg
