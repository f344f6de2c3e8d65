# GAL stage 1: the baseline LeNet-5 on MNIST, GAL's teacher and the student's
# start. Next: lenet5_mnist_gal-0.01.py or _gal-0.05.py.
_base_ = ['../classification/lenet5_mnist.py']
