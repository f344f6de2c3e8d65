_base_ = ['./lenet5_fashion_mnist.py', '../_base_/pruning/l1.py']
