# faster_rcnn_vgg16_voc trained on VOC2007 trainval alone (VOC2012 not
# needed), evaluated on VOC2007 test.
_base_ = [
    './faster_rcnn_vgg16_voc.py', './_base_/datasets/voc07_trainval.py'
]
train_dataloader = dict(
    dataset=dict(
        dataset=dict(
            _delete_=True,
            **_base_.voc07_trainval,
            data_root=_base_.data_root,
            pipeline=_base_.train_pipeline)))
