# Office-31 in its folder layout, <data_root>/<domain>/images/<class>/*.jpg.
# Every training item is a labelled source image plus an unlabelled target
# image; evaluation runs on the whole target domain (top-1 and the per-class
# mean accuracy, `single-label/recall` with macro averaging).
# office31_{a2w,a2d,w2a,w2d,d2w,d2a}.py choose the domains.
dataset_type = 'Office31'
data_root = 'data/office31/'
data_preprocessor = dict(
    num_classes=31,
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(256, 256)),
    dict(type='RandomCrop', crop_size=224),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(256, 256)),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=32,  # source images; as many target images come with them
    num_workers=4,
    dataset=dict(
        type='DomainPairDataset',
        source=dict(
            type=dataset_type,
            data_root=data_root,
            domain='amazon',
            pipeline=train_pipeline),
        target=dict(
            type=dataset_type,
            data_root=data_root,
            domain='webcam',
            pipeline=train_pipeline)),
    sampler=dict(type='InfiniteSampler', shuffle=True),  # trained by iters
)
val_dataloader = dict(
    batch_size=64,
    num_workers=4,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        domain='webcam',
        test_mode=True,
        pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
val_evaluator = [
    dict(type='Accuracy', topk=(1, )),
    dict(type='SingleLabelMetric', items=['recall'], average='macro'),
]
test_dataloader = val_dataloader
test_evaluator = val_evaluator
