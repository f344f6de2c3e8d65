# Taylor pruning of the trained baseline (train configs/classification/
# vgg19_cifar10.py first), fine-tuned at a tenth of its learning rate.
_base_ = ['./vgg19_cifar10.py', '../_base_/pruning/taylor.py']
load_from = 'work_dirs/vgg19_cifar10/epoch_160.pth'
optim_wrapper = dict(optimizer=dict(lr=0.01))
custom_hooks = [dict(_base_.custom_hooks[0], step_channels=32)]
