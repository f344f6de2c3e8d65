# VGG-19 with BN for 32x32 inputs: the 16 convs, global pooling, one FC.
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='VGG', depth=19, norm_cfg=dict(type='BN'), out_indices=(4, )),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=512,
        loss=dict(type='CrossEntropyLoss')),
)
