# The CPU demo: the VOC Faster R-CNN VGG16 setup on generated shapes in the
# VOC devkit layout (tools/demo.sh writes them), trained from scratch for 300
# iterations. To fit a laptop CPU the VGG16 is a quarter as wide (with BN, to
# train from scratch), fc6/fc7 have 512 units and images are 256x256.
_base_ = ['../faster_rcnn_vgg16_voc.py']
data_root = 'data/shapes_voc/'
classes = ('circle', 'square', 'triangle')
img_scale = (256, 256)

model = dict(
    backbone=dict(with_bn=True, widen_factor=0.25),
    rpn_head=dict(
        in_channels=128,
        feat_channels=128,
        anchor_generator=dict(scales=[2, 4, 8])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=128),
        bbox_head=dict(in_channels=128, fc_out_channels=512, num_classes=3)),
    train_cfg=dict(rpn_proposal=dict(nms_pre=2000, max_per_img=500)),
    test_cfg=dict(rpn=dict(nms_pre=1000, max_per_img=100)))

# the VOC pipelines, at the demo's image size
train_pipeline = [
    dict(t, scale=img_scale) if t['type'] == 'Resize' else t
    for t in _base_.train_pipeline
]
test_pipeline = [
    dict(t, scale=img_scale) if t['type'] == 'Resize' else t
    for t in _base_.test_pipeline
]
train_dataloader = dict(
    batch_size=4,
    dataset=dict(
        _delete_=True,
        type='CheckedVOCDataset',
        data_root=data_root,
        metainfo=dict(classes=classes),
        ann_file='VOC2007/ImageSets/Main/trainval.txt',
        data_prefix=dict(sub_data_root='VOC2007/'),
        filter_cfg=dict(filter_empty_gt=True),
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        metainfo=dict(classes=classes),
        pipeline=test_pipeline))
test_dataloader = val_dataloader

max_iters = 300
train_cfg = dict(
    _delete_=True,
    type='IterBasedTrainLoop',
    max_iters=max_iters,
    val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(
        type='MultiStepLR',
        by_epoch=False,
        begin=0,
        end=max_iters,
        milestones=[240],
        gamma=0.1)
]
optim_wrapper = dict(optimizer=dict(lr=0.02))
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(by_epoch=False, interval=max_iters))
log_processor = dict(by_epoch=False)
