# UCI digits -> MNIST from scratch on a CPU: VGG-16 at a quarter of the
# width, 32 px (a 1x1 conv5 map into fc6), 256-unit fc6/fc7 and bottleneck.
_base_ = ['./scratch.py', '../../_base_/datasets/digits_uci2mnist.py']
model = dict(
    backbone=dict(widen_factor=0.25, fc_channels=256, pool_size=1),
    neck=dict(in_channels=256, out_channels=256),
    head=dict(num_classes=10, in_channels=256))
