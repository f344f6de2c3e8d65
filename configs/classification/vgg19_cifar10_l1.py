_base_ = ['./vgg19_cifar10.py', '../_base_/pruning/l1.py']
