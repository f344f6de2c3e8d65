# DCP stage 2: channel selection on the stage-1 model (tools/train.py runs it;
# override load_from with --cfg-options load_from=...). The checkpoint
# (epoch_1.pth) holds the pruned classifier without its auxiliary heads. Next:
# resnet56_cifar10_dcp_stage3.py.
_base_ = ['./resnet56_cifar10_dcp_stage1.py', './_base_/selection.py']
load_from = 'work_dirs/resnet56_cifar10_dcp_stage1/epoch_100.pth'
# train_cfg.pruning_rate: the share of channels removed in each pruned layer
train_cfg = dict(_base_.dcp_selection, _delete_=True, layers=_base_.dcp_layers)
default_hooks = dict(
    checkpoint=dict(save_optimizer=False, save_param_scheduler=False))
