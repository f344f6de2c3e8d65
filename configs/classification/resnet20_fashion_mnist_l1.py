_base_ = ['./resnet20_fashion_mnist.py', '../_base_/pruning/l1.py']
