# GAL on the CIFAR ResNets: one scalar mask per residual block, on the
# output of its last BN (bn2) before the shortcut is added; a block at 0
# becomes its shortcut (mmpretrain's projection for downsampling blocks)
# followed by the block's final ReLU.
gal_structures = [
    dict(
        kind='block',
        types=['BasicBlock'],
        within='backbone',
        residual='bn2',
        shortcut='downsample',
        activation='relu')
]
