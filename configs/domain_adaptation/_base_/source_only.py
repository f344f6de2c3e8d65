# The source-only baseline: the same network and schedule trained with the
# source cross-entropy alone (target batches are loaded but not used).
_base_ = './mmd.py'
model = dict(mmd_loss=None)
