# GAL-0.8 on ResNet-56 (CIFAR-10), stage 3: fine-tune the pruned classifier.
_base_ = ['./resnet56_cifar10_gal-0.6_finetune.py']
load_from = 'work_dirs/resnet56_cifar10_gal-0.8/epoch_100.pth'
