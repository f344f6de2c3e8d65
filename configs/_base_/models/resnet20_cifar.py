# The classic CIFAR ResNet-20: 3 stages x 3 basic blocks, 16/32/64 channels.
model = dict(
    type='ImageClassifier',
    backbone=dict(type='CIFARResNet', depth=20),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=64,
        loss=dict(type='CrossEntropyLoss')),
)
