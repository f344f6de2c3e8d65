_base_ = ['./vgg19_cifar10.py', '../_base_/pruning/psfp.py']
