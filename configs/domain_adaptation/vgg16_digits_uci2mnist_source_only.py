_base_ = './_base_/digits_uci2mnist.py'
model = dict(mmd_loss=None)  # the source-only baseline
