# Fashion-MNIST: MNIST's files and layout (tools/data/prepare_fashion_mnist.sh)
_base_ = ['./resnet20_mnist.py']
data_root = 'data/fashion_mnist/'
data_preprocessor = dict(mean=[72.94], std=[90.02])
dataset = dict(type='OfflineFashionMNIST', data_root=data_root)
train_dataloader = dict(dataset=dataset)
val_dataloader = dict(dataset=dataset)
test_dataloader = val_dataloader
