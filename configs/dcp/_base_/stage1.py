# DCP stage 1 starts from the trained baseline (Algorithm 1 of Zhuang et al.
# takes a pre-trained model; the public code's config loads the baseline's
# best checkpoint) and fine-tunes it with the auxiliary losses. The code's
# schedule: 100 epochs at lr 0.1, divided by 10 at epochs 40 and 60. On
# CIFAR-10 (a 160-epoch baseline here) it is used as is; MNIST's 20-epoch
# baseline gets it at the same scale (1/8): 12 epochs, steps at 5 and 7.
stage1_cifar = dict(
    param_scheduler=dict(
        type='MultiStepLR', by_epoch=True, milestones=[40, 60], gamma=0.1),
    train_cfg=dict(by_epoch=True, max_epochs=100, val_interval=1))
stage1_mnist = dict(
    param_scheduler=dict(
        type='MultiStepLR', by_epoch=True, milestones=[5, 7], gamma=0.1),
    train_cfg=dict(by_epoch=True, max_epochs=12, val_interval=1))
