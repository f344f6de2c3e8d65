# GAL-0.05 on LeNet-5 (Fashion-MNIST), stage 2 (as GAL-0.01, lambda 0.05).
# Next: lenet5_fashion_mnist_gal-0.05_finetune.py.
_base_ = ['./lenet5_fashion_mnist_gal-0.01.py']
optim_wrapper = dict(masks=dict(optimizer=dict(sparsity=0.05)))
