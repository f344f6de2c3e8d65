# DCP stage 1: the trained VGG-19 baseline on CIFAR-10 (train
# configs/classification/vgg19_cifar10.py first) fine-tuned with
# discrimination-aware auxiliary losses (configs/dcp/_base_/vgg19.py) on the
# public code's stage-1 schedule (configs/dcp/_base_/stage1.py). Next:
# vgg19_cifar10_dcp_stage2.py.
_base_ = [
    '../classification/vgg19_cifar10.py',
    './_base_/vgg19.py',
    './_base_/stage1.py',
]
load_from = 'work_dirs/vgg19_cifar10/epoch_160.pth'
model = dict(_base_.dcp_model)
param_scheduler = _base_.stage1_cifar.param_scheduler
train_cfg = _base_.stage1_cifar.train_cfg
