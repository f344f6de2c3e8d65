# GAL-0.1 on VGG-16 (CIFAR-10), stage 3: fine-tune the pruned classifier.
_base_ = ['./vgg16_cifar10_gal-0.05_finetune.py']
load_from = 'work_dirs/vgg16_cifar10_gal-0.1/epoch_100.pth'
