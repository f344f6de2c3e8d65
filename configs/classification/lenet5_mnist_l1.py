_base_ = ['./lenet5_mnist.py', '../_base_/pruning/l1.py']
