# GAL-0.6 on ResNet-56 (CIFAR-10), stage 3: fine-tune the pruned classifier
# with cross-entropy (a plain classifier config: SafeCheckpointHook rebuilds
# the pruned architecture recorded in the checkpoint before loading it).
_base_ = ['./resnet56_cifar10_gal_baseline.py', './_base_/gal.py']
load_from = 'work_dirs/resnet56_cifar10_gal-0.6/epoch_100.pth'
optim_wrapper = dict(_base_.finetune_optim_wrapper, _delete_=True)
param_scheduler = dict(_base_.finetune_param_scheduler, _delete_=True)
train_cfg = _base_.finetune_train_cfg
