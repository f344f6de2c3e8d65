# MMD adaptation (DAN-style) of VGG-16 on an Office-31 transfer, no pruning.
# SGD by iterations; the pretrained layers learn 10x slower than the new
# bottleneck and classifier, as in DAN.
_base_ = [
    '../../_base_/models/vgg16_mmd.py', '../../_base_/default_runtime.py'
]
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=5e-4),
    paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.1)}))
param_scheduler = dict(type='PolyLR', power=0.75, eta_min=1e-4,
                       by_epoch=False)
train_cfg = dict(by_epoch=False, max_iters=10000, val_interval=1000)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(by_epoch=False, interval=1000, max_keep_ckpts=2),
    # warns in the log when the adapted features collapse (MMD -> 0)
    collapse_guard=dict(type='CollapseGuardHook'))
log_processor = dict(by_epoch=False)
