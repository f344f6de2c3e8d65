_base_ = ['./lenet5_mnist.py', '../_base_/datasets/fashion_mnist.py']
