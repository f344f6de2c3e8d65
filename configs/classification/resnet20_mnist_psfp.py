_base_ = ['./resnet20_mnist.py', '../_base_/pruning/psfp.py']
