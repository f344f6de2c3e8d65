_base_ = ['./resnet56_cifar10.py', '../_base_/pruning/l1.py']
