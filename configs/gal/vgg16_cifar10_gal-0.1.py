# GAL-0.1 on VGG-16 (CIFAR-10), stage 2 (as GAL-0.05, lambda 0.1). Next:
# vgg16_cifar10_gal-0.1_finetune.py.
_base_ = ['./vgg16_cifar10_gal-0.05.py']
optim_wrapper = dict(masks=dict(optimizer=dict(sparsity=0.1)))
