# GAL-0.05 on LeNet-5 (MNIST), stage 3: fine-tune the pruned classifier.
_base_ = ['./lenet5_mnist_gal-0.01_finetune.py']
load_from = 'work_dirs/lenet5_mnist_gal-0.05/epoch_100.pth'
