# VOC2007 trainval alone, for training (the usual setting of the VGG16 Faster
# R-CNN papers: VOC2007 trainval -> VOC2007 test). The voc07 configs swap it
# in for voc0712's VOC2007+2012 concatenation.
voc07_trainval = dict(
    type='CheckedVOCDataset',
    ann_file='VOC2007/ImageSets/Main/trainval.txt',
    data_prefix=dict(sub_data_root='VOC2007/'),
    filter_cfg=dict(filter_empty_gt=True, min_size=32, bbox_min_size=32),
    # True: decode every image (and compare it with its <size>) when the
    # dataset is built, before training
    check_images=False)
