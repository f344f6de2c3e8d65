# Office-31, webcam -> dslr.
_base_ = './office31.py'
train_dataloader = dict(
    dataset=dict(source=dict(domain='webcam'), target=dict(domain='dslr')))
val_dataloader = dict(dataset=dict(domain='dslr'))
test_dataloader = val_dataloader
