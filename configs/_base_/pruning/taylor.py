# Taylor (Molchanov et al. 2017), as published: from a trained model
# (`load_from` the baseline), every `interval` iterations the `step_channels`
# globally weakest channels by the Taylor criterion on activations (per
# example |mean over H, W of z * dL/dz|, averaged over the batch, L2-normalised
# per layer) are removed, with fine-tuning in between, until the FLOPs
# target; the rest of training fine-tunes. A step at `end` that has not
# reached the target prunes straight to it.
custom_hooks = [
    dict(
        type='ProgressivePruningHook',
        criterion=dict(type='TaylorActivation'),
        target='flops',
        target_ratio=0.5,
        by_epoch=False,
        interval=10,
        step_channels=4,
        end=0.5,
        global_ranking=True,
        soft_steps=0),
]
