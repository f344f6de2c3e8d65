# DCP stage 1: the trained ResNet-56 baseline on CIFAR-10 (train
# configs/classification/resnet56_cifar10.py first) fine-tuned with
# discrimination-aware auxiliary losses (configs/dcp/_base_/resnet56.py) on
# the public code's stage-1 schedule (configs/dcp/_base_/stage1.py). Next:
# resnet56_cifar10_dcp_stage2.py.
_base_ = [
    '../classification/resnet56_cifar10.py',
    './_base_/resnet56.py',
    './_base_/stage1.py',
]
load_from = 'work_dirs/resnet56_cifar10/epoch_160.pth'
model = dict(_base_.dcp_model)
param_scheduler = _base_.stage1_cifar.param_scheduler
train_cfg = _base_.stage1_cifar.train_cfg
