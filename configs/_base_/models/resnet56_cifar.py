_base_ = ['./resnet20_cifar.py']
model = dict(backbone=dict(depth=56))
