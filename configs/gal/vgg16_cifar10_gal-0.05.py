# GAL-0.05 on VGG-16 (CIFAR-10), stage 2: masks learnt against the baseline
# (load_from: the baseline's checkpoint, also the frozen teacher), then the
# structures whose mask is 0 are removed; the last checkpoint holds the pruned
# plain classifier. Next: vgg16_cifar10_gal-0.05_finetune.py.
_base_ = [
    './vgg16_cifar10_gal_baseline.py', './_base_/gal.py', './_base_/vgg16.py'
]
load_from = 'work_dirs/vgg16_cifar10_gal_baseline/epoch_160.pth'
model = dict(
    _base_.gal_model, structures=_base_.gal_structures,
    miu=0.1)  # the public code's
optim_wrapper = dict(_base_.gal_optim_wrapper, _delete_=True)
optim_wrapper['masks'] = dict(
    optimizer=dict(type='FISTA', lr=0.01, sparsity=0.05))  # lambda
param_scheduler = dict(_base_.gal_param_scheduler, _delete_=True)
train_cfg = _base_.gal_train_cfg
custom_hooks = _base_.gal_hooks
