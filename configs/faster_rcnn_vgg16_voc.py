# Unpruned baseline: Faster R-CNN VGG16 on VOC07+12, mmdet's VOC schedule
# (the training set is repeated 3 times, so 4 epochs = 12 passes).
_base_ = [
    './_base_/models/faster_rcnn_vgg16.py', './_base_/datasets/voc0712.py',
    './_base_/det_runtime.py'
]
max_epochs = 4
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[3],
        gamma=0.1)
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001))
auto_scale_lr = dict(enable=False, base_batch_size=16)
