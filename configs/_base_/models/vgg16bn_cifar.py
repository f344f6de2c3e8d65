# VGG-16 for CIFAR-10 as in GAL (and the CIFAR channel-pruning papers): the
# 13 convs with BN (mmpretrain's VGG), four max-pools (none after the last
# stage), global average pooling of the 2x2 map and a classifier with one
# hidden layer of 512 units with BN and ReLU: 314M FLOPs, 15.0M parameters.
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='VGG',
        depth=16,
        norm_cfg=dict(type='BN'),
        with_last_pool=False,
        out_indices=(4, )),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='StackedLinearClsHead',
        num_classes=10,
        in_channels=512,
        mid_channels=[512],
        norm_cfg=dict(type='BN1d'),
        loss=dict(type='CrossEntropyLoss')),
)
