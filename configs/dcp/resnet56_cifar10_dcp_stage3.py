# DCP stage 3: fine-tune the pruned ResNet-56 on CIFAR-10 from stage 2 as a
# plain classifier with cross-entropy, on the baseline's schedule (the paper
# fine-tunes with the full one). SafeCheckpointHook shrinks the model to the
# architecture recorded in the checkpoint before its weights are loaded.
_base_ = ['../classification/resnet56_cifar10.py']
load_from = 'work_dirs/resnet56_cifar10_dcp_stage2/epoch_1.pth'
