# GAL stage 1: the baseline ResNet-20 on Fashion-MNIST, GAL's teacher and the
# student's start. Next: resnet20_fashion_mnist_gal-0.6.py.
_base_ = ['../classification/resnet20_fashion_mnist.py']
