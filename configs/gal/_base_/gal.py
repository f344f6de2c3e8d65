# GAL (Lin et al., CVPR 2019), stage 2: the student starts from the trained
# baseline (load_from), which is also its frozen teacher; soft masks on its
# structures are learnt label-free with a discriminator on the logits and
# FISTA; after the last epoch GALRemovalHook removes every structure whose
# mask is exactly 0 and the checkpoint holds the plain pruned classifier.
# Settings of the paper and its public code (CIFAR): 100 epochs, batch 128,
# SGD lr 0.01 momentum 0.9 weight decay 2e-4 for the student and the
# discriminator, lr x0.1 every 30 epochs (the masks' too).
gal_model = dict(
    type='GAL',
    miu=1.,  # weight of MSE(teacher logits, student logits)
    noise_dropout=0.1,  # the paper's noise: dropout on the student's input
    mask_interval=1,  # the paper: k1 = k2 = 1; the public code steps masks
    # every 200 iterations (mask_interval=200)
    mask_init='normal')  # N(0, 1), as in the public code
gal_optim_wrapper = dict(
    constructor='GALOptimWrapperConstructor',
    student=dict(
        optimizer=dict(
            type='SGD', lr=0.01, momentum=0.9, weight_decay=2e-4)),
    discriminator=dict(
        optimizer=dict(
            type='SGD', lr=0.01, momentum=0.9, weight_decay=2e-4)),
    # sparsity is lambda of GAL-lambda: the prox threshold is lr * lambda
    masks=dict(optimizer=dict(type='FISTA', lr=0.01, sparsity=0.01)))
gal_param_scheduler = dict(
    type='MultiStepLR', by_epoch=True, milestones=[30, 60, 90], gamma=0.1)
gal_train_cfg = dict(by_epoch=True, max_epochs=100, val_interval=1)
gal_hooks = [dict(type='GALRemovalHook')]

# Stage 3: fine-tune the pruned plain classifier with cross-entropy, masks
# gone (the public code: lr 1e-4, x0.1 every 30 epochs, 100 epochs).
finetune_optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=1e-4, momentum=0.9, weight_decay=2e-4))
finetune_param_scheduler = gal_param_scheduler
finetune_train_cfg = gal_train_cfg
