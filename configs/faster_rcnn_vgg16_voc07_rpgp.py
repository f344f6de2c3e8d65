# faster_rcnn_vgg16_voc_rpgp trained on VOC2007 trainval alone (VOC2012 not
# needed), evaluated on VOC2007 test.
_base_ = [
    './faster_rcnn_vgg16_voc_rpgp.py', './_base_/datasets/voc07_trainval.py'
]
train_dataloader = dict(
    dataset=dict(
        dataset=dict(
            _delete_=True,
            **_base_.voc07_trainval,
            data_root=_base_.data_root,
            pipeline=_base_.train_pipeline)))
# A third of the iterations (about 30k): the same 15 steps in the first 15%.
custom_hooks = [dict(_base_.custom_hooks[0], interval=300)]
