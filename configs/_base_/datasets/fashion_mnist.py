# Fashion-MNIST: same files and layout as MNIST (see tools/data/).
_base_ = ['./mnist.py']
dataset_type = 'OfflineFashionMNIST'
data_root = 'data/fashion_mnist/'
data_preprocessor = dict(mean=[72.94], std=[90.02])
train_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
val_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
test_dataloader = val_dataloader
