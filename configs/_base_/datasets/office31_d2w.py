# Office-31, dslr -> webcam.
_base_ = './office31.py'
train_dataloader = dict(
    dataset=dict(source=dict(domain='dslr'), target=dict(domain='webcam')))
val_dataloader = dict(dataset=dict(domain='webcam'))
test_dataloader = val_dataloader
