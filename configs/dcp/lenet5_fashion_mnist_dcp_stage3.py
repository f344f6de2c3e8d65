# DCP stage 3: fine-tune the pruned LeNet-5 on Fashion-MNIST from stage 2 as a
# plain classifier with cross-entropy, on the baseline's schedule (the paper
# fine-tunes with the full one). SafeCheckpointHook shrinks the model to the
# architecture recorded in the checkpoint before its weights are loaded.
_base_ = ['../classification/lenet5_fashion_mnist.py']
load_from = 'work_dirs/lenet5_fashion_mnist_dcp_stage2/epoch_1.pth'
