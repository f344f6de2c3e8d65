_base_ = ['./lenet5_mnist.py', '../_base_/pruning/psfp.py']
