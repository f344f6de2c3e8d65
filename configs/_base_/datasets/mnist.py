# MNIST from the four uncompressed IDX files under data_root.
dataset_type = 'OfflineMNIST'
data_root = 'data/mnist/'
data_preprocessor = dict(num_classes=10, mean=[33.46], std=[78.87])
pipeline = [dict(type='PackInputs')]

train_dataloader = dict(
    batch_size=128,
    num_workers=2,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='train',
        test_mode=False,
        pipeline=pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True),
)
val_dataloader = dict(
    batch_size=256,
    num_workers=2,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='test',  # without it mmpretrain evaluates on the train split
        test_mode=True,
        pipeline=pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_dataloader = val_dataloader
test_evaluator = val_evaluator
