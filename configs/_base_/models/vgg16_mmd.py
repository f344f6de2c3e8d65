# DAN-style adaptation on torchvision's VGG-16 (Long et al. 2015): the conv
# features and fc6/fc7 start from ImageNet weights (torchvision's file, read
# locally; `model.backbone.init_cfg=None` trains from scratch), then a
# 256-unit bottleneck (the adaptation head) and the 31-way classifier.
# Loss: cross-entropy on the source + lambda * MK-MMD between the source and
# target bottleneck features, lambda ramping up over training.
model = dict(
    type='MMDClassifier',
    backbone=dict(
        type='TorchvisionVGG16',
        init_cfg=dict(
            type='Pretrained',
            checkpoint='data/pretrained/vgg16-397923af.pth')),
    neck=dict(
        type='LinearNeck',
        in_channels=4096,
        out_channels=256,
        norm_cfg=None,
        act_cfg=dict(type='ReLU')),
    head=dict(
        type='LinearClsHead',
        num_classes=31,
        in_channels=256,
        loss=dict(type='CrossEntropyLoss')),
    mmd_loss=dict(type='MKMMDLoss', kernel_mul=2., kernel_num=5),
    mmd_weight=1.,
    lambda_ramp='sigmoid',
)
