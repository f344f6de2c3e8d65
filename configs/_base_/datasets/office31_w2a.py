# Office-31, webcam -> amazon.
_base_ = './office31.py'
train_dataloader = dict(
    dataset=dict(source=dict(domain='webcam'), target=dict(domain='amazon')))
val_dataloader = dict(dataset=dict(domain='amazon'))
test_dataloader = val_dataloader
