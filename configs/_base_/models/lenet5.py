# LeNet-5 (mmpretrain's): 32x32 grey input, tanh, two conv + three FC layers.
model = dict(
    type='ImageClassifier',
    backbone=dict(type='LeNet5', num_classes=10),
    neck=None,
    head=dict(type='ClsHead', loss=dict(type='CrossEntropyLoss')),
)
