# GAL-0.8 on ResNet-56 (CIFAR-10), stage 2 (as GAL-0.6, lambda 0.8). Next:
# resnet56_cifar10_gal-0.8_finetune.py.
_base_ = ['./resnet56_cifar10_gal-0.6.py']
optim_wrapper = dict(masks=dict(optimizer=dict(sparsity=0.8)))
