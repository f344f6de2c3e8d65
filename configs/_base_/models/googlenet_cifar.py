# GoogLeNet for CIFAR-10 (prunedet's CIFARGoogLeNet, the network of GAL's
# public code): 9 inception modules of 4 branches; 1.53G FLOPs, 6.16M
# parameters.
model = dict(
    type='ImageClassifier',
    backbone=dict(type='CIFARGoogLeNet'),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=1024,
        loss=dict(type='CrossEntropyLoss')),
)
