_base_ = ['./resnet20_mnist.py', '../_base_/datasets/fashion_mnist.py']
