# DCP stage 2: channel selection, layer by layer, from the stage-1 model
# (load_from), everything but the layer frozen. For each layer, input
# channels are added greedily by the largest ||dL/dW_j||_F of the joint loss
# (reconstruction MSE against the unpruned model + CE of the next auxiliary
# head), each followed by SGD on the selected weights; the rest are removed.
dcp_selection = dict(
    type='DCPSelectionLoop',
    # share of the input channels removed in EACH pruned layer, in [0, 1):
    # floor(C * pruning_rate) of C go (the comparison tool sets 0.3/0.5/0.7)
    pruning_rate=0.5,
    # training samples per gradient pass; the paper uses the whole training
    # set per added channel (samples=None), far too slow on a CPU: 512 are 4
    # batches of 128
    samples=512,
    # SGD steps (batches) of the sub-problem per added channel; None: as many
    # as a gradient pass (the code: one pass)
    sub_steps=None,
    mse_weight=1.,
    ce_weight=1.)
# one log line per `interval` added channels, counted as iterations
log_processor = dict(by_epoch=False)
