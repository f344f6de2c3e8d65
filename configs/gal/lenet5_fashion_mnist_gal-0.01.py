# GAL-0.01 on LeNet-5 (Fashion-MNIST), stage 2: masks learnt against the
# baseline (load_from: the baseline's checkpoint, also the frozen teacher),
# then the structures whose mask is 0 are removed; the last checkpoint holds
# the pruned plain classifier. Next: lenet5_fashion_mnist_gal-0.01_finetune.py.
_base_ = [
    './lenet5_fashion_mnist_gal_baseline.py',
    './_base_/gal.py',
    './_base_/lenet5.py'
]
load_from = 'work_dirs/lenet5_fashion_mnist_gal_baseline/epoch_20.pth'
model = dict(_base_.gal_model, structures=_base_.gal_structures)
optim_wrapper = dict(_base_.gal_optim_wrapper, _delete_=True)
optim_wrapper['masks'] = dict(
    optimizer=dict(type='FISTA', lr=0.01, sparsity=0.01))  # lambda
param_scheduler = dict(_base_.gal_param_scheduler, _delete_=True)
train_cfg = _base_.gal_train_cfg
custom_hooks = _base_.gal_hooks
