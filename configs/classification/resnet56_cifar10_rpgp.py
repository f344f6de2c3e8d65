_base_ = ['./resnet56_cifar10.py', '../_base_/pruning/rpgp.py']
# Kept channels in multiples of 8: measured the fastest at batch 1 on CPU
# (benchmark_pruning.py --round-to; README, "Latency per FLOP").
custom_hooks = [dict(_base_.custom_hooks[0], round_to=8)]
