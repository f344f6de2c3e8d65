_base_ = [
    '../_base_/models/lenet5.py', '../_base_/datasets/mnist.py',
    '../_base_/schedules/mnist_bs128.py', '../_base_/default_runtime.py'
]
# LeNet-5 reads 32x32 images
pipeline = [dict(type='Resize', scale=32), dict(type='PackInputs')]
train_dataloader = dict(dataset=dict(pipeline=pipeline))
val_dataloader = dict(dataset=dict(pipeline=pipeline))
test_dataloader = val_dataloader
