# 20 epochs of SGD, lr divided by 10 at epochs 10 and 15.
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=5e-4))
param_scheduler = dict(
    type='MultiStepLR', by_epoch=True, milestones=[10, 15], gamma=0.1)
train_cfg = dict(by_epoch=True, max_epochs=20, val_interval=1)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=128)
