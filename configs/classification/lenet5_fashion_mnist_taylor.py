# Taylor pruning of the trained baseline (train configs/classification/
# lenet5_fashion_mnist.py first), fine-tuned at a tenth of its learning rate.
_base_ = ['./lenet5_fashion_mnist.py', '../_base_/pruning/taylor.py']
load_from = 'work_dirs/lenet5_fashion_mnist/epoch_20.pth'
optim_wrapper = dict(optimizer=dict(lr=0.005))
custom_hooks = [dict(_base_.custom_hooks[0], step_channels=2)]
