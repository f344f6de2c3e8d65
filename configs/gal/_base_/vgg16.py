# GAL on VGG-16 (CIFAR): one mask per filter after every conv -> BN -> ReLU
# (mmpretrain's ConvModule) and per neuron of the 512-unit hidden layer of
# the classifier.
gal_structures = [
    dict(kind='filter', types=['ConvModule'], within='backbone'),
    dict(kind='filter', names=['head.layers.0']),
]
