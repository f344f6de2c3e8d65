_base_ = ['./_base_/digits_uci2mnist.py', './_base_/tcp.py']
# TCP prunes the trained MMD model of the same transfer (no warm-up again),
# 16 filters (of 1056) every 50 iterations of the 2000
load_from = 'work_dirs/vgg16_digits_uci2mnist_mmd/iter_2000.pth'
model = dict(warmup_iters=0)
custom_hooks = [dict(_base_.custom_hooks[0], interval=50, step_channels=16)]
