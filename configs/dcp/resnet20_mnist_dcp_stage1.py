# DCP stage 1: the trained ResNet-20 baseline on MNIST (train
# configs/classification/resnet20_mnist.py first) fine-tuned with
# discrimination-aware auxiliary losses (configs/dcp/_base_/resnet20.py) on
# the public code's stage-1 schedule (configs/dcp/_base_/stage1.py). Next:
# resnet20_mnist_dcp_stage2.py.
_base_ = [
    '../classification/resnet20_mnist.py',
    './_base_/resnet20.py',
    './_base_/stage1.py',
]
load_from = 'work_dirs/resnet20_mnist/epoch_20.pth'
model = dict(_base_.dcp_model)
param_scheduler = _base_.stage1_mnist.param_scheduler
train_cfg = _base_.stage1_mnist.train_cfg
