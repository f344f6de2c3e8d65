# MMD adaptation trained from scratch (no ImageNet weights): every layer
# learns at the same lr, and the MMD weighs in only after a source-only
# warm-up. Without the warm-up, or with lambda = 1, the MMD collapses the
# features before the classes separate (a constant feature has zero MMD);
# CollapseGuardHook says so in the log if it happens anyway.
_base_ = './mmd.py'
model = dict(
    backbone=dict(init_cfg=None, batch_norm=True),
    mmd_weight=0.3,
    warmup_iters=500)
optim_wrapper = dict(paramwise_cfg=dict(_delete_=True))
train_cfg = dict(max_iters=2000, val_interval=500)
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(interval=500))
